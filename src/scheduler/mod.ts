export { DELIVERY_SIZE_LIMIT, Scheduler } from "./loop.ts";
export type {
  ConsumerHandle,
  CreateQueueInput,
  EnqueueItem,
  KeyStats,
  MetricsSnapshot,
  NackItem,
  QueueMetrics,
  QueueStats,
  QueueSummary,
  SchedulerOptions,
  SettleItem,
} from "./loop.ts";
export type { ConsumerSink, Counters } from "./state.ts";
export type { EnqueueDecision, FailureDecision, PolicyHooks, QueueScripts } from "./policy.ts";
