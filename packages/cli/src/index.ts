export {
  envName,
  formatHelp,
  OptionError,
  type OptionSpec,
  type OptionType,
  type OptionValues,
  type ParsedCommandLine,
  parseDuration,
  parseOptions,
} from './options.js';
export { runMain } from './run-main.js';
