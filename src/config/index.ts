export { parseConfig, loadConfigFile, parseConfigSource, loadConfigSource, readConfigText, configInputs, type ConfigSource } from './load.js';
export { parseConfigIncremental, type ConfigCache, type IncrementalLoad } from './incremental.js';
export { ConfigError, formatIssue, formatPath, type ConfigIssue, type KeyPath } from './issues.js';
export { describeConfig, schemaRows, type SchemaRow } from './docs.js';
export * as schema from './schema.js';
export { describeSpec, type FieldSpec, type Fields, type ValueSpec, type StringFormat, type DefaultScope } from './schema-types.js';
export { parseCidr, parseIp, parseListen, type AddressFamily, type ParsedAddress, type ParsedCidr, type ListenAddress } from './net.js';
export type * from './types.js';
export { planReload, isEmpty as isReloadPlanEmpty, isEmptyVirtualServerChange, type ReloadPlan, type VrrpChange, type KeptVrrpInstance, type VirtualServerChange, type KeptVirtualServer, type RealServerPlan, type KeptRealServer } from './diff.js';
