/**
 * The operator's runtime overrides (keepalive-ts weight / drain / disable / enable), in a module of
 * their own so the daemon can register the control-socket commands before the health-check and
 * data-plane modules are loaded (start-up time).
 */
import type { RuntimeOverride } from './pool.js';

/** The operator's commands: keepalive-ts weight / drain / disable / enable. */
export type OverrideAction = RuntimeOverride['action'] | 'enable';
export const OVERRIDE_COMMANDS: readonly OverrideAction[] = ['weight', 'drain', 'disable', 'enable'];
