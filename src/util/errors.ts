/**
 * Coded errors (undici style): every error the daemon raises on purpose carries a stable `code`
 * so callers and tests match on the code, never on message text.
 */
export type ErrorCode =
  | 'E_CONFIG_INVALID'
  | 'E_CONFIG_READ'
  | 'E_PRIVILEGE'
  | 'E_CONTROL_PROTOCOL'
  | 'E_CONTROL_UNAVAILABLE'
  | 'E_NETLINK'
  | 'E_SOCKET'
  | 'E_CLOSED'
  | 'E_NATIVE'
  | 'E_RELOAD_UNSUPPORTED'
  /** [bgp] needs BIRD 2 and it is not installed. */
  | 'E_BIRD_MISSING'
  /** BIRD refused its config or did not answer. */
  | 'E_BIRD'
  /** Another daemon holds this control socket or pid file; or a path there is not ours to touch. */
  | 'E_ALREADY_RUNNING'
  | 'E_UNSAFE_PATH'
  /** No data-plane implementation forwards a service's lb_kind (lvs/dataplane/index.ts). */
  | 'E_DATAPLANE_UNAVAILABLE'
  /** A CLI command was called with bad options. */
  | 'E_USAGE'
  /** A runtime command names a virtual or real server this director does not have. */
  | 'E_NOT_FOUND'
  /** genhash could not fetch the page. */
  | 'E_GENHASH'
  /** An alert mail could not be sent. */
  | 'E_SMTP';

export class KeepaliveError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'KeepaliveError';
  }
}

export function isKeepaliveError(err: unknown, code?: ErrorCode): err is KeepaliveError {
  return err instanceof KeepaliveError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
