/** The shape of one benchmark workload (bench/workloads/*.ts) and what the runner gives it. */
import { type Figure, Progress, QUICK } from "./report.ts";

export interface Ctx {
  progress: Progress;
  /** Figures measured so far in this run (later workloads may build on earlier ones). */
  figures: Figure[];
  log(line: string): void;
}

export interface Workload {
  id: string;
  title: string;
  run(ctx: Ctx): Promise<Figure[]>;
}

/** A size for full mode, or for quick mode (BENCH_QUICK=1). */
export function size(full: number, quick: number): number {
  return QUICK ? quick : full;
}

/** Finds a figure of this run by group and name. */
export function find(figures: Figure[], group: string, name: string): Figure | undefined {
  return figures.find((f) => f.group === group && f.name === name);
}
