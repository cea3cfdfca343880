export {
  ConfigError,
  defaultConfig,
  DEFAULTS,
  loadConfig,
  LOG_LEVELS,
  parseConfig,
  parseSocketAddr,
} from "./config.ts";
export type { FilaConfig, LoadConfigOptions, LogLevel, ParseConfigOptions } from "./config.ts";
