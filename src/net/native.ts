/**
 * Typed wrappers over the keepalive_native N-API addon (native/keepalive_native.c): a send-only
 * AF_PACKET socket for GARP/NA frames and a raw IPv6 socket that reports the hop limit, which the
 * `raw-socket` package cannot do (Linux raw IPv6 sockets never expose the IPv6 header).
 *
 * The addon is loaded lazily so that pure modules importing this file (and unit tests) work on a
 * machine where it has not been built; the first real use then fails with a clear E_NATIVE error.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { macToBuffer } from './frames.js';

/** Opaque handle returned by the addon for a raw IPv6 socket. */
type Raw6Handle = { readonly __raw6: unique symbol };

type Raw6NativeCallback = (
  err: (Error & { code?: string }) | null,
  payload?: Buffer,
  src?: string,
  hopLimit?: number,
  ifindex?: number,
  dst?: string,
) => void;

interface NativeBinding {
  packetOpen(ifindex: number): number;
  packetSend(fd: number, ifindex: number, frame: Buffer, dstMac: Buffer): number;
  raw4Open(ifindex: number): number;
  raw4Send(fd: number, packet: Buffer, dst: string): number;
  close(fd: number): void;
  flockExclusive(fd: number): boolean;
  raw6Open(
    ifindex: number,
    protocol: number,
    group: string | null,
    bindToDevice: boolean,
    callback: Raw6NativeCallback,
  ): Raw6Handle;
  raw6Send(handle: Raw6Handle, payload: Buffer, dst: string, ifindex: number, src: string | null): number;
  raw6Close(handle: Raw6Handle): void;
  nftLoad(): string | null;
  nftOpen(): NftHandle;
  nftRun(handle: NftHandle, commands: string, outputFlags: number): Promise<NftRunResult>;
  nftClose(handle: NftHandle): void;
  nftCounters(family: number, table: string): Promise<Record<string, [number, number]>>;
  conntrackCountByMark(marks: number[]): Promise<{ counts: Record<string, [number, number]>; entries: number }>;
  nftSetElements(family: number, table: string, set: string): Promise<Array<[string, number | null, number, number]>>;
  conntrackDeleteByMark(marks: number[]): Promise<void>;
}

/** Opaque handle of a libnftables context (native/keepalive_native.c). */
export type NftHandle = { readonly __nft: unique symbol };

/** What one libnftables command buffer gave: exit code, printed output and errors, time it took. */
export interface NftRunResult {
  rc: number;
  output: string;
  error: string;
  /** Milliseconds libnftables spent (parse + netlink transaction), measured on the worker thread. */
  ms: number;
}

// dist/src/net/native.js -> repo root is three levels up; the addon lives in build/Release there.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const addonPath = path.join(repoRoot, 'build', 'Release', 'keepalive_native.node');

let binding: NativeBinding | undefined;

function native(): NativeBinding {
  if (binding) return binding;
  try {
    const require = createRequire(path.join(repoRoot, 'package.json'));
    binding = require(addonPath) as NativeBinding;
    return binding;
  } catch (err) {
    throw new KeepaliveError(
      'E_NATIVE',
      `cannot load native addon ${addonPath} (run npm run build): ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

/** The errno name (e.g. 'EPERM', 'EAGAIN') behind a socket error raised by this module, if any. */
export function errnoCode(err: unknown): string | undefined {
  const cause = err instanceof KeepaliveError ? err.cause : err;
  const code = (cause as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function socketError(what: string, err: unknown): Error {
  // Bad arguments (TypeError/RangeError from the addon's checks) are caller bugs, not socket
  // failures: let them through unchanged.
  if (err instanceof KeepaliveError || err instanceof TypeError || err instanceof RangeError) return err;
  return new KeepaliveError('E_SOCKET', `${what}: ${errorMessage(err)}`, { cause: err });
}

/** Send-only AF_PACKET socket bound to one interface (protocol 0: never receives). */
export class PacketSocket {
  readonly ifindex: number;
  #fd: number;

  private constructor(fd: number, ifindex: number) {
    this.#fd = fd;
    this.ifindex = ifindex;
  }

  static open(ifindex: number): PacketSocket {
    const n = native();
    try {
      return new PacketSocket(n.packetOpen(ifindex), ifindex);
    } catch (err) {
      throw socketError(`AF_PACKET socket on ifindex ${ifindex}`, err);
    }
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Sends a complete Ethernet frame; dstMac defaults to the frame's own destination. */
  send(frame: Buffer, dstMac?: string | Buffer): number {
    if (this.#fd < 0) throw new KeepaliveError('E_CLOSED', 'packet socket is closed');
    const mac = dstMac === undefined ? frame.subarray(0, 6) : typeof dstMac === 'string' ? macToBuffer(dstMac) : dstMac;
    try {
      return native().packetSend(this.#fd, this.ifindex, frame, Buffer.from(mac));
    } catch (err) {
      throw socketError(`send on ifindex ${this.ifindex}`, err);
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    // Mark closed first: even if close(2) reports an error the fd number must never be reused.
    this.#fd = -1;
    native().close(fd);
  }
}

/**
 * Send-only raw IPv4 socket (IPPROTO_RAW: the caller supplies the IPv4 header) bound to one
 * interface; sends synchronously, multicast not looped back.
 */
export class Raw4SendSocket {
  readonly ifindex: number;
  #fd: number;

  private constructor(fd: number, ifindex: number) {
    this.#fd = fd;
    this.ifindex = ifindex;
  }

  static open(ifindex: number): Raw4SendSocket {
    const n = native();
    try {
      return new Raw4SendSocket(n.raw4Open(ifindex), ifindex);
    } catch (err) {
      throw socketError(`raw IPv4 socket on ifindex ${ifindex}`, err);
    }
  }

  /** Sends one IPv4 packet (header included) to `dst`. */
  send(packet: Buffer, dst: string): number {
    if (this.#fd < 0) throw new KeepaliveError('E_CLOSED', 'raw IPv4 socket is closed');
    try {
      return native().raw4Send(this.#fd, packet, dst);
    } catch (err) {
      throw socketError(`raw4 send to ${dst}`, err);
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    native().close(fd);
  }
}

export interface Raw6Message {
  payload: Buffer;
  /** Source address, without a zone suffix (the arrival interface is `ifindex`). */
  src: string;
  /** Destination address the datagram was sent to (IPV6_PKTINFO): the group, or a unicast address. */
  dst: string;
  /** IPv6 hop limit the datagram arrived with (-1 if the kernel did not report it). */
  hopLimit: number;
  ifindex: number;
}

export interface Raw6Options {
  ifindex: number;
  /** IP protocol number; VRRP is 112. */
  protocol?: number;
  /** Multicast group to join on `ifindex`; null joins none (unicast peers). Default ff02::12. */
  group?: string | null;
  /** SO_BINDTODEVICE to `ifindex` so only datagrams arriving there are delivered. */
  bindToDevice?: boolean;
}

export const VRRP_PROTOCOL = 112;
export const VRRP_GROUP_V6 = 'ff02::12';

/**
 * Raw IPv6 socket with hop limit 255 on send, multicast loop off, kernel checksumming off, and a
 * receive path that reports hop limit and arrival interface per datagram. Keeps the process
 * alive while open, like a bound dgram socket.
 */
export class Raw6Socket {
  readonly ifindex: number;
  #handle: Raw6Handle | undefined;

  private constructor(handle: Raw6Handle, ifindex: number) {
    this.#handle = handle;
    this.ifindex = ifindex;
  }

  static open(
    opts: Raw6Options,
    onMessage: (msg: Raw6Message) => void,
    onError: (err: KeepaliveError) => void = (err) => {
      throw err;
    },
  ): Raw6Socket {
    const n = native();
    const group = opts.group === undefined ? VRRP_GROUP_V6 : opts.group;
    const callback: Raw6NativeCallback = (err, payload, src, hopLimit, ifindex, dst) => {
      if (err) onError(new KeepaliveError('E_SOCKET', `raw6 receive: ${err.message}`, { cause: err }));
      else onMessage({ payload: payload!, src: src!, dst: dst!, hopLimit: hopLimit!, ifindex: ifindex! });
    };
    try {
      const handle = n.raw6Open(opts.ifindex, opts.protocol ?? VRRP_PROTOCOL, group, opts.bindToDevice ?? false, callback);
      return new Raw6Socket(handle, opts.ifindex);
    } catch (err) {
      throw socketError(`raw IPv6 socket on ifindex ${opts.ifindex}`, err);
    }
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  /**
   * Sends `payload` (no IPv6 header) to `dst` out of this socket's interface, from `src` if given.
   * `ifindex` 0 lets the routing table choose the interface (PING_CHECK).
   */
  send(payload: Buffer, dst: string, src?: string, ifindex: number = this.ifindex): number {
    if (!this.#handle) throw new KeepaliveError('E_CLOSED', 'raw IPv6 socket is closed');
    try {
      return native().raw6Send(this.#handle, payload, dst, ifindex, src ?? null);
    } catch (err) {
      throw socketError(`raw6 send to ${dst}`, err);
    }
  }

  close(): void {
    if (!this.#handle) return;
    const handle = this.#handle;
    this.#handle = undefined;
    native().raw6Close(handle);
  }
}

/** libnftables output flags (libnftables(3)): NFT_CTX_OUTPUT_JSON. */
export const NFT_OUTPUT_JSON = 1 << 4;

/**
 * libnftables through the addon (dlopen of libnftables.so.1 at run time). Each run() is one
 * command buffer executed on the libuv thread pool; a context runs one buffer at a time.
 */
export const libnftables = {
  /** Null when libnftables can be used, else why not (dlopen's message). Loads the addon. */
  problem(): string | null {
    return native().nftLoad();
  },
  open(): NftHandle {
    try {
      return native().nftOpen();
    } catch (err) {
      if (err instanceof KeepaliveError) throw err;
      throw new KeepaliveError('E_NATIVE', `libnftables: ${errorMessage(err)}`, { cause: err });
    }
  },
  run(handle: NftHandle, commands: string, outputFlags = 0): Promise<NftRunResult> {
    return native().nftRun(handle, commands, outputFlags);
  },
  close(handle: NftHandle): void {
    native().nftClose(handle);
  },
  /**
   * Named counters of one table (family: NFPROTO_INET 1, NFPROTO_NETDEV 5) from one raw
   * nfnetlink dump on the thread pool: name -> [packets, bytes].
   */
  counters(family: number, table: string): Promise<Record<string, [number, number]>> {
    return native().nftCounters(family, table);
  },
  /**
   * Elements of one set or map from one raw nfnetlink dump on the thread pool: [key bytes as hex,
   * data as a host-order u32 (marks) or null, ms until expiry, timeout ms] (0 = none).
   */
  setElements(family: number, table: string, set: string): Promise<Array<[string, number | null, number, number]>> {
    return native().nftSetElements(family, table, set);
  },
};

/**
 * Conntrack entries by connection mark, from one ctnetlink dump on the thread pool: for each of
 * `marks` that has entries, [TCP ESTABLISHED, everything else]; `entries`: the table's size.
 */
export function conntrackCountByMark(marks: readonly number[]): Promise<{ counts: Map<number, { active: number; inactive: number }>; entries: number }> {
  return native()
    .conntrackCountByMark([...marks])
    .then((r) => ({ counts: new Map(Object.entries(r.counts).map(([k, [a, i]]) => [Number(k), { active: a, inactive: i }])), entries: r.entries }));
}

/** Deletes the conntrack entries carrying any of `marks` (ctnetlink, on the thread pool). */
export function conntrackDeleteByMark(marks: readonly number[]): Promise<void> {
  return native().conntrackDeleteByMark([...marks]);
}

/** True when the addon can be loaded (for diagnostics; operations throw E_NATIVE otherwise). */
export function nativeAvailable(): boolean {
  try {
    native();
    return true;
  } catch {
    return false;
  }
}

/**
 * flock(fd, LOCK_EX | LOCK_NB) on a descriptor opened with node:fs: true when this process now
 * holds the lock, false when another one does. Throws E_NATIVE when the addon is not built.
 */
export function flockExclusive(fd: number): boolean {
  const n = native();
  try {
    return n.flockExclusive(fd);
  } catch (err) {
    throw new KeepaliveError('E_SOCKET', `flock: ${errorMessage(err)}`, { cause: err });
  }
}
