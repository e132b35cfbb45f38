/*
 * keepalive_native: the two socket kinds Node cannot give us.
 *
 *  - AF_PACKET send-only sockets, to put hand-built gratuitous ARP and unsolicited NA frames on
 *    the wire (the kernel would not let us forge sender == target, nor an NA sourced from a VIP
 *    that is not yet configured, through any higher-level socket).
 *  - Raw IPv6 sockets for VRRPv3 that report the received hop limit and arrival interface via
 *    ancillary data. RFC 5798 requires dropping adverts whose hop limit is not 255, and Linux raw
 *    IPv6 sockets never hand the IPv6 header to user space, so IPV6_RECVHOPLIMIT + recvmsg() is
 *    the only way to see it. Receive is driven by a libuv poll handle on Node's own loop.
 *
 *  - conntrack entries counted by connection mark (one ctnetlink dump, counted in C), and deleted
 *    by mark (a NAT service's connections when its drain is over).
 *  - the named counters of one nf_tables table, and the elements of one set, each dumped with one
 *    raw nfnetlink request (libnftables first fetches the whole ruleset for any list command).
 *  - libnftables, loaded at run time with dlopen("libnftables.so.1") (no build-time dependency on
 *    its headers or library): each nftables command buffer runs as napi async work on the libuv
 *    thread pool, so the event loop never waits for the kernel to commit a transaction.
 *
 * Only node_api.h is used. Every error thrown carries `code` = errno name (EPERM, ENODEV...),
 * `errno` and `syscall`, so the TypeScript layer can map it to a coded KeepaliveError.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "check_engine.h"
#include "napi_callback.h"
#include "relay_engine.h"
#include "precise_timer.h"
#include "vrrp_sender.h"

/* Big enough for any IPv6 datagram the kernel can hand us (payload only, no IPv6 header), so a
 * datagram is never silently truncated. Allocated once per raw6 socket. */
#define RAW6_BUF_SIZE 65536
/* Upper bound of datagrams drained per readiness event, so a flood cannot starve the loop. */
#define RAW6_MAX_BATCH 64

#define CALL(env, expr)                                                                            \
  do {                                                                                             \
    if ((expr) != napi_ok) {                                                                       \
      throw_last_napi_error(env);                                                                  \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

static void throw_last_napi_error(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  napi_throw_error(env, "ERR_NAPI",
                   info && info->error_message ? info->error_message : "N-API call failed");
}

/* Builds an Error whose code is the errno name, e.g. { code: 'ENODEV', errno: 19, syscall }. */
static napi_value make_errno_error(napi_env env, const char *syscall, int err) {
  char msg[256];
  const char *name = uv_err_name(-err); /* libuv error codes are -errno on Unix */
  snprintf(msg, sizeof msg, "%s: %s (%s)", syscall, strerror(err), name);
  napi_value code_v, msg_v, error, errno_v, syscall_v;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_v) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v) != napi_ok ||
      napi_create_error(env, code_v, msg_v, &error) != napi_ok)
    return NULL;
  if (napi_create_int32(env, err, &errno_v) == napi_ok)
    napi_set_named_property(env, error, "errno", errno_v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v) == napi_ok)
    napi_set_named_property(env, error, "syscall", syscall_v);
  return error;
}

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  napi_value error = make_errno_error(env, syscall, err);
  if (error) napi_throw(env, error);
  else throw_last_napi_error(env);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* ---- argument helpers (all return false with a pending exception on failure) ---- */

static bool arg_int(napi_env env, napi_value v, int32_t min, int32_t max, const char *what,
                    int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    throw_type(env, what);
    return false;
  }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != (double)(int64_t)d || d < min ||
      d > max) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
    return false;
  }
  *out = (int32_t)d;
  return true;
}

static bool arg_buffer(napi_env env, napi_value v, const char *what, void **data, size_t *len) {
  bool is_buf = false;
  if (napi_is_buffer(env, v, &is_buf) != napi_ok || !is_buf ||
      napi_get_buffer_info(env, v, data, len) != napi_ok) {
    throw_type(env, what);
    return false;
  }
  return true;
}

static bool arg_in6(napi_env env, napi_value v, const char *what, struct in6_addr *out) {
  char s[INET6_ADDRSTRLEN + 1];
  size_t n = 0;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, v, s, sizeof s, &n) != napi_ok || n >= sizeof s - 1 ||
      inet_pton(AF_INET6, s, out) != 1) {
    throw_type(env, what);
    return false;
  }
  return true;
}

static bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_undefined || t == napi_null);
}

static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_last_napi_error(env);
    return false;
  }
  /* Missing trailing arguments arrive as undefined; the per-argument checks reject them. */
  return true;
}

/* ---------------------------------- AF_PACKET ---------------------------------- */

/* packetOpen(ifindex) -> fd. Protocol 0: the socket is bound to the interface but subscribes to
 * no ethertype, so the kernel never queues received frames on it (send only). */
static napi_value packet_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t ifindex;
  if (!get_args(env, info, 1, argv) || !arg_int(env, argv[0], 1, INT32_MAX, "ifindex", &ifindex))
    return NULL;
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = 0;
  sll.sll_ifindex = ifindex;
  /* Binding validates the ifindex now (ENODEV) instead of at the first send. */
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }
  napi_value out;
  CALL(env, napi_create_int32(env, fd, &out));
  return out;
}

/* packetSend(fd, ifindex, frame, dstMac) -> bytes sent. The frame includes its Ethernet header;
 * dstMac only fills sockaddr_ll as the kernel expects for SOCK_RAW. */
static napi_value packet_send(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd, ifindex;
  void *frame, *mac;
  size_t frame_len, mac_len;
  if (!get_args(env, info, 4, argv) || !arg_int(env, argv[0], 0, INT32_MAX, "fd", &fd) ||
      !arg_int(env, argv[1], 1, INT32_MAX, "ifindex", &ifindex) ||
      !arg_buffer(env, argv[2], "frame must be a Buffer", &frame, &frame_len) ||
      !arg_buffer(env, argv[3], "dstMac must be a Buffer", &mac, &mac_len))
    return NULL;
  if (frame_len < ETH_HLEN || frame_len > 65535) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "frame length out of range");
    return NULL;
  }
  if (mac_len != ETH_ALEN) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "dstMac must be 6 bytes");
    return NULL;
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex;
  memcpy(&sll.sll_protocol, (const uint8_t *)frame + 12, 2); /* ethertype, network order */
  sll.sll_halen = ETH_ALEN;
  memcpy(sll.sll_addr, mac, ETH_ALEN);
  ssize_t n;
  do {
    n = sendto(fd, frame, frame_len, 0, (struct sockaddr *)&sll, sizeof sll);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendto", errno);
  napi_value out;
  CALL(env, napi_create_int32(env, (int32_t)n, &out));
  return out;
}

/* close(fd). The TypeScript wrapper guarantees a given fd is closed at most once. */
static napi_value fd_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !arg_int(env, argv[0], 0, INT32_MAX, "fd", &fd))
    return NULL;
  /* On Linux the fd is released even when close() reports EINTR, so never retry. */
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

/* flockExclusive(fd) -> true when this process now holds flock(LOCK_EX) on fd, false when another
 * process holds it (EWOULDBLOCK). Never blocks. Node has no flock(2); the daemon locks its pid file
 * and a lock file next to its control socket with it, so a second daemon fails before it starts
 * anything. The lock goes with the descriptor (on close or process death). */
static napi_value fd_flock_exclusive(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !arg_int(env, argv[0], 0, INT32_MAX, "fd", &fd))
    return NULL;
  int r;
  do {
    r = flock(fd, LOCK_EX | LOCK_NB);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EWOULDBLOCK) return throw_errno(env, "flock", errno);
  napi_value out;
  CALL(env, napi_get_boolean(env, r == 0, &out));
  return out;
}

/* ---------------------------------- raw IPv6 ---------------------------------- */

typedef struct {
  uv_poll_t poll;
  napi_env env;
  int fd;                   /* -1 once closed */
  bool poll_initialized;    /* uv_poll_init succeeded, so uv_close is owed */
  bool handle_closed;       /* uv_close callback ran (or no handle was ever initialized) */
  bool finalized;           /* the JS external was garbage-collected */
  napi_ref callback;        /* (err, payload, src, hopLimit, ifindex, dst) */
  napi_ref self;            /* keeps the external alive while open, like an active dgram socket */
  napi_async_context async; /* so callbacks run with proper async hooks / microtask draining */
  uint8_t *buf;
} raw6_t;

static void raw6_maybe_free(raw6_t *s) {
  if (s->handle_closed && s->finalized) {
    free(s->buf);
    free(s);
  }
}

static void raw6_on_handle_closed(uv_handle_t *h) {
  raw6_t *s = (raw6_t *)h->data;
  s->handle_closed = true;
  raw6_maybe_free(s);
}

static void raw6_finalize(napi_env env, void *data, void *hint) {
  raw6_t *s = (raw6_t *)data;
  s->finalized = true;
  raw6_maybe_free(s);
}

/* Stops polling, closes the fd and drops the JS references. Idempotent. Memory is released only
 * once both libuv (uv_close callback) and V8 (finalizer) are done with the struct. */
static void raw6_shutdown(raw6_t *s) {
  if (s->fd < 0) return;
  if (s->poll_initialized) {
    /* libuv forbids closing an fd that is still being polled: stop first, then close. */
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, raw6_on_handle_closed);
  } else {
    s->handle_closed = true;
  }
  close(s->fd);
  s->fd = -1;
  if (s->callback) {
    napi_delete_reference(s->env, s->callback);
    s->callback = NULL;
  }
  if (s->async) {
    napi_async_destroy(s->env, s->async);
    s->async = NULL;
  }
  if (s->self) {
    napi_delete_reference(s->env, s->self);
    s->self = NULL;
  }
}

/* Invokes the JS callback; an exception thrown by it becomes an uncaught exception, exactly as for
 * a throwing 'message' listener on a dgram socket. */
static void raw6_invoke(raw6_t *s, size_t argc, napi_value *argv) {
  invoke_js_callback(s->env, s->callback, s->async, argc, argv);
}

static void raw6_report_error(raw6_t *s, const char *syscall, int err) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
  napi_value e = make_errno_error(s->env, syscall, err);
  if (e) raw6_invoke(s, 1, &e);
  napi_close_handle_scope(s->env, scope);
}

/* Delivers one datagram; returns false when the socket should stop draining (EAGAIN, error, or
 * the callback closed the socket). */
static bool raw6_receive_one(raw6_t *s) {
  struct sockaddr_in6 src;
  struct iovec iov = {.iov_base = s->buf, .iov_len = RAW6_BUF_SIZE};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  memset(&src, 0, sizeof src);
  msg.msg_name = &src;
  msg.msg_namelen = sizeof src;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;

  ssize_t n = recvmsg(s->fd, &msg, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EINTR) return true;
    if (errno != EAGAIN && errno != EWOULDBLOCK) raw6_report_error(s, "recvmsg", errno);
    return false;
  }
  /* A truncated datagram cannot be a valid VRRP advert; skip it rather than misparse it. */
  if (msg.msg_flags & MSG_TRUNC) return true;

  int hop_limit = -1;
  int ifindex = 0;
  struct in6_addr dst = IN6ADDR_ANY_INIT;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != IPPROTO_IPV6) continue;
    if (c->cmsg_type == IPV6_HOPLIMIT && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      memcpy(&hop_limit, CMSG_DATA(c), sizeof(int));
    } else if (c->cmsg_type == IPV6_PKTINFO &&
               c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      ifindex = (int)pi.ipi6_ifindex;
      dst = pi.ipi6_addr;
    }
  }
  char addr[INET6_ADDRSTRLEN], dst_addr[INET6_ADDRSTRLEN];
  if (!inet_ntop(AF_INET6, &src.sin6_addr, addr, sizeof addr)) addr[0] = '\0';
  if (!inet_ntop(AF_INET6, &dst, dst_addr, sizeof dst_addr)) dst_addr[0] = '\0';

  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
  napi_value argv[6];
  void *copy;
  bool ok = napi_get_null(env, &argv[0]) == napi_ok &&
            napi_create_buffer_copy(env, (size_t)n, s->buf, &copy, &argv[1]) == napi_ok &&
            napi_create_string_utf8(env, addr, NAPI_AUTO_LENGTH, &argv[2]) == napi_ok &&
            napi_create_int32(env, hop_limit, &argv[3]) == napi_ok &&
            napi_create_int32(env, ifindex, &argv[4]) == napi_ok &&
            napi_create_string_utf8(env, dst_addr, NAPI_AUTO_LENGTH, &argv[5]) == napi_ok;
  if (ok) raw6_invoke(s, 6, argv);
  napi_close_handle_scope(env, scope);
  return ok && s->fd >= 0;
}

static void raw6_on_poll(uv_poll_t *h, int status, int events) {
  raw6_t *s = (raw6_t *)h->data;
  if (s->fd < 0) return;
  if (status < 0) {
    raw6_report_error(s, "uv_poll", -status);
    return;
  }
  for (int i = 0; i < RAW6_MAX_BATCH && s->fd >= 0; i++)
    if (!raw6_receive_one(s)) break;
}

static int set_int_opt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}

/* raw4Open(ifindex) -> fd. A send-only raw IPv4 socket: IPPROTO_RAW implies IP_HDRINCL (the caller
 * writes the IPv4 header, so source address and TTL are exactly its own) and receives nothing.
 * Unlike the raw-socket package, which queues every send until libuv reports the socket writable
 * (a loop turn later), sendto() here runs at once: VRRP adverts leave the moment the state machine
 * asks. Multicast leaves through ifindex and is not looped back to this host. */
static napi_value raw4_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t ifindex;
  if (!get_args(env, info, 1, argv) || !arg_int(env, argv[0], 1, INT32_MAX, "ifindex", &ifindex))
    return NULL;
  char name[IF_NAMESIZE];
  if (if_indextoname((unsigned)ifindex, name) == NULL) return throw_errno(env, "if_indextoname", errno);
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) return throw_errno(env, "socket", errno);
  struct ip_mreqn mr;
  memset(&mr, 0, sizeof mr);
  mr.imr_ifindex = ifindex;
  const char *failed = NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name) + 1) < 0) failed = "setsockopt(SO_BINDTODEVICE)";
  else if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr) < 0) failed = "setsockopt(IP_MULTICAST_IF)";
  else if (set_int_opt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 0) < 0) failed = "setsockopt(IP_MULTICAST_LOOP)";
  if (failed) {
    int err = errno;
    close(fd);
    return throw_errno(env, failed, err);
  }
  napi_value out;
  CALL(env, napi_create_int32(env, fd, &out));
  return out;
}

/* reusePortListen(address, port, backlog[, reusePort = true]) -> fd of a listening TCP socket with SO_REUSEPORT (and
 * SO_REUSEADDR, as Node's own listen sets): each proxy worker thread listens on its own socket of
 * the same address:port and the kernel spreads the connections over them. Node's net.Server of
 * Node 20 cannot set SO_REUSEPORT; it adopts the fd with listen({ fd }). */
static napi_value reuseport_listen(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char addr[INET6_ADDRSTRLEN + 1];
  size_t addr_len = 0;
  int32_t port, backlog;
  napi_valuetype t;
  if (!get_args(env, info, 4, argv)) return NULL;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, argv[0], addr, sizeof addr, &addr_len) != napi_ok || addr_len >= sizeof addr - 1)
    return throw_type(env, "address must be an IP address string");
  if (!arg_int(env, argv[1], 0, 65535, "port", &port) || !arg_int(env, argv[2], 1, 65535, "backlog", &backlog)) return NULL;
  /* Optional 4th argument false: an exclusive listener (SO_REUSEADDR only, like Node's listen). */
  bool reuse_port = true;
  if (napi_typeof(env, argv[3], &t) == napi_ok && t == napi_boolean) napi_get_value_bool(env, argv[3], &reuse_port);
  struct sockaddr_storage ss;
  socklen_t sslen;
  if (!sockaddr_from_text(addr, port, &ss, &sslen)) return throw_type(env, "address must be an IP address string");
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  const char *failed = NULL;
  if (set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) failed = "setsockopt(SO_REUSEADDR)";
  else if (reuse_port && set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) failed = "setsockopt(SO_REUSEPORT)";
  else if (ss.ss_family == AF_INET6 && set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) < 0) failed = "setsockopt(IPV6_V6ONLY)";
  else if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) failed = "bind";
  else if (listen(fd, backlog) < 0) failed = "listen";
  if (failed) {
    int err = errno;
    close(fd);
    return throw_errno(env, failed, err);
  }
  napi_value out;
  CALL(env, napi_create_int32(env, fd, &out));
  return out;
}

/* raiseThreadNice(delta) -> the new nice value of the calling thread only (Linux keeps one per
 * thread; a new thread starts with its creator's). The proxy workers raise theirs so that under
 * CPU saturation the VRRP thread is served first. Raising needs no privilege. */
static napi_value raise_thread_nice(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t delta;
  if (!get_args(env, info, 1, argv) || !arg_int(env, argv[0], 0, 39, "delta", &delta)) return NULL;
  pid_t tid = (pid_t)syscall(SYS_gettid);
  errno = 0;
  int cur = getpriority(PRIO_PROCESS, (id_t)tid);
  if (cur == -1 && errno) return throw_errno(env, "getpriority", errno);
  int want = cur + delta > 19 ? 19 : cur + delta;
  if (setpriority(PRIO_PROCESS, (id_t)tid, want) < 0) return throw_errno(env, "setpriority", errno);
  napi_value out;
  CALL(env, napi_create_int32(env, want, &out));
  return out;
}

/* raw4Send(fd, packet, dst) -> bytes sent. `packet` starts with its IPv4 header. */
static napi_value raw4_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  void *pkt;
  size_t len;
  char dst[INET_ADDRSTRLEN + 1];
  size_t dst_len;
  if (!get_args(env, info, 3, argv) || !arg_int(env, argv[0], 0, INT32_MAX, "fd", &fd) ||
      !arg_buffer(env, argv[1], "packet must be a Buffer", &pkt, &len))
    return NULL;
  if (len < 20 || len > 65535) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "packet length out of range");
    return NULL;
  }
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  if (napi_get_value_string_utf8(env, argv[2], dst, sizeof dst, &dst_len) != napi_ok ||
      inet_pton(AF_INET, dst, &sin.sin_addr) != 1)
    return throw_type(env, "dst must be an IPv4 address");
  ssize_t n;
  do {
    n = sendto(fd, pkt, len, 0, (struct sockaddr *)&sin, sizeof sin);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendto", errno);
  napi_value out;
  CALL(env, napi_create_int32(env, (int32_t)n, &out));
  return out;
}

/* raw6Open(ifindex, protocol, group|null, bindToDevice, callback) -> handle (external). */
static napi_value raw6_open(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t ifindex, protocol;
  struct in6_addr group;
  bool has_group = false, bind_dev = false;
  napi_valuetype cb_type;
  if (!get_args(env, info, 5, argv) ||
      !arg_int(env, argv[0], 1, INT32_MAX, "ifindex", &ifindex) ||
      !arg_int(env, argv[1], 1, 255, "protocol", &protocol))
    return NULL;
  if (!is_nullish(env, argv[2])) {
    if (!arg_in6(env, argv[2], "group must be an IPv6 address", &group)) return NULL;
    has_group = true;
  }
  if (napi_get_value_bool(env, argv[3], &bind_dev) != napi_ok)
    return throw_type(env, "bindToDevice must be a boolean");
  if (napi_typeof(env, argv[4], &cb_type) != napi_ok || cb_type != napi_function)
    return throw_type(env, "callback must be a function");

  int fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return throw_errno(env, "socket", errno);

  const char *failed = NULL;
  char ifname[IF_NAMESIZE];
  if (set_int_opt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1) < 0) failed = "setsockopt(IPV6_RECVHOPLIMIT)";
  else if (set_int_opt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) < 0) failed = "setsockopt(IPV6_RECVPKTINFO)";
  /* VRRP (RFC 5798 5.1.2.3) sends with hop limit 255 so receivers can reject off-link adverts. */
  else if (set_int_opt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255) < 0) failed = "setsockopt(IPV6_MULTICAST_HOPS)";
  else if (set_int_opt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255) < 0) failed = "setsockopt(IPV6_UNICAST_HOPS)";
  else if (set_int_opt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex) < 0) failed = "setsockopt(IPV6_MULTICAST_IF)";
  /* Our own adverts must not come back to us as if from a peer. */
  else if (set_int_opt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0) < 0) failed = "setsockopt(IPV6_MULTICAST_LOOP)";
  /* The caller computes the checksum itself (VRRP's pseudo-header checksum); ICMPv6 sockets
   * always have kernel checksumming and reject this option, so leave them alone. */
  else if (protocol != IPPROTO_ICMPV6 && set_int_opt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, -1) < 0)
    failed = "setsockopt(IPV6_CHECKSUM)";
  else if (bind_dev && !if_indextoname((unsigned)ifindex, ifname)) failed = "if_indextoname";
  else if (bind_dev && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, strlen(ifname) + 1) < 0)
    failed = "setsockopt(SO_BINDTODEVICE)";
  else if (has_group) {
    struct ipv6_mreq mreq;
    mreq.ipv6mr_multiaddr = group;
    mreq.ipv6mr_interface = (unsigned)ifindex;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0)
      failed = "setsockopt(IPV6_ADD_MEMBERSHIP)";
  }
  if (failed) {
    int err = errno;
    close(fd);
    return throw_errno(env, failed, err);
  }

  raw6_t *s = calloc(1, sizeof *s);
  uint8_t *buf = malloc(RAW6_BUF_SIZE);
  if (!s || !buf) {
    free(s);
    free(buf);
    close(fd);
    return throw_errno(env, "malloc", ENOMEM);
  }
  s->env = env;
  s->fd = fd;
  s->buf = buf;
  s->handle_closed = false;

  napi_value external, resource_name;
  if (napi_create_external(env, s, raw6_finalize, NULL, &external) != napi_ok) {
    close(fd);
    free(buf);
    free(s);
    throw_last_napi_error(env);
    return NULL;
  }
  /* From here on the finalizer owns `s`; failures go through raw6_shutdown. */
  struct uv_loop_s *loop = NULL;
  int uv_err = 0;
  if (napi_create_reference(env, external, 1, &s->self) != napi_ok ||
      napi_create_reference(env, argv[4], 1, &s->callback) != napi_ok ||
      napi_create_string_utf8(env, "keepalive:raw6", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, NULL, resource_name, &s->async) != napi_ok ||
      napi_get_uv_event_loop(env, &loop) != napi_ok) {
    raw6_shutdown(s);
    throw_last_napi_error(env);
    return NULL;
  }
  if ((uv_err = uv_poll_init(loop, &s->poll, fd)) == 0) {
    s->poll_initialized = true;
    s->poll.data = s;
    uv_err = uv_poll_start(&s->poll, UV_READABLE, raw6_on_poll);
  }
  if (uv_err != 0) {
    raw6_shutdown(s);
    return throw_errno(env, "uv_poll", -uv_err);
  }
  return external;
}

/* The pointer behind a handle this addon made (an external); a TypeError saying `what` otherwise. */
static bool arg_external(napi_env env, napi_value v, const char *what, void **out) {
  napi_valuetype t;
  void *data = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, v, &data) != napi_ok || !data) {
    throw_type(env, what);
    return false;
  }
  *out = data;
  return true;
}

static bool arg_raw6(napi_env env, napi_value v, raw6_t **out) {
  return arg_external(env, v, "handle must be a raw6 handle", (void **)out);
}

/* raw6Send(handle, payload, dst, ifindex, src|null) -> bytes sent. With src, IPV6_PKTINFO pins
 * the source address (VRRPv3 must be sourced from the link-local address). */
static napi_value raw6_send(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  raw6_t *s;
  void *payload;
  size_t len;
  struct sockaddr_in6 dst;
  struct in6_pktinfo pi;
  int32_t ifindex;
  bool has_src = false;
  memset(&dst, 0, sizeof dst);
  memset(&pi, 0, sizeof pi);
  if (!get_args(env, info, 5, argv) || !arg_raw6(env, argv[0], &s) ||
      !arg_buffer(env, argv[1], "payload must be a Buffer", &payload, &len) ||
      !arg_in6(env, argv[2], "dst must be an IPv6 address", &dst.sin6_addr) ||
      !arg_int(env, argv[3], 0, INT32_MAX, "ifindex", &ifindex))
    return NULL;
  if (!is_nullish(env, argv[4])) {
    if (!arg_in6(env, argv[4], "src must be an IPv6 address", &pi.ipi6_addr)) return NULL;
    has_src = true;
  }
  if (s->fd < 0) return throw_errno(env, "sendmsg", EBADF);
  dst.sin6_family = AF_INET6;
  /* Scope is required for link-local / link-scope multicast destinations, ignored otherwise. */
  dst.sin6_scope_id = (uint32_t)ifindex;
  pi.ipi6_ifindex = (unsigned)ifindex;

  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
  } control;
  struct iovec iov = {.iov_base = payload, .iov_len = len};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  memset(&control, 0, sizeof control);
  msg.msg_name = &dst;
  msg.msg_namelen = sizeof dst;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (has_src) {
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof pi);
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
  }
  ssize_t n;
  do {
    n = sendmsg(s->fd, &msg, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendmsg", errno);
  napi_value out;
  CALL(env, napi_create_int32(env, (int32_t)n, &out));
  return out;
}

/* raw6Close(handle). Idempotent. */
static napi_value raw6_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  raw6_t *s;
  if (!get_args(env, info, 1, argv) || !arg_raw6(env, argv[0], &s)) return NULL;
  raw6_shutdown(s);
  return NULL;
}

/* ---------------------------------- libnftables ---------------------------------- */

/* The few libnftables entry points we use, declared here so that neither its headers nor the
 * library are needed to build: the library is opened with dlopen() on first use. Prototypes as in
 * libnftables(3) (Debian package libnftables1). */
struct nft_ctx;
typedef struct nft_ctx *(*nft_ctx_new_fn)(uint32_t flags);
typedef void (*nft_ctx_free_fn)(struct nft_ctx *ctx);
typedef int (*nft_ctx_buffer_fn)(struct nft_ctx *ctx);
typedef const char *(*nft_ctx_get_buffer_fn)(struct nft_ctx *ctx);
typedef void (*nft_ctx_output_set_flags_fn)(struct nft_ctx *ctx, unsigned int flags);
typedef int (*nft_run_cmd_from_buffer_fn)(struct nft_ctx *nft, const char *buf);

#define NFT_LIBRARY "libnftables.so.1"
#define NFT_CTX_DEFAULT 0
/* Output flags this addon accepts from JavaScript: NFT_CTX_OUTPUT_HANDLE (1 << 3),
 * NFT_CTX_OUTPUT_JSON (1 << 4), NFT_CTX_OUTPUT_ECHO (1 << 5), NFT_CTX_OUTPUT_TERSE (1 << 11). */
#define NFT_OUTPUT_FLAGS_ALLOWED ((1u << 3) | (1u << 4) | (1u << 5) | (1u << 11))

static struct {
  bool tried;
  char error[512];
  nft_ctx_new_fn ctx_new;
  nft_ctx_free_fn ctx_free;
  nft_ctx_buffer_fn buffer_output, buffer_error;
  nft_ctx_get_buffer_fn get_output, get_error;
  nft_ctx_output_set_flags_fn set_flags;
  nft_run_cmd_from_buffer_fn run;
} nftlib;

/* Opens the library once per process; returns NULL on success or a message. Main thread only. */
static const char *nftlib_load(void) {
  if (nftlib.tried) return nftlib.error[0] ? nftlib.error : NULL;
  nftlib.tried = true;
  void *dl = dlopen(NFT_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    const char *e = dlerror();
    snprintf(nftlib.error, sizeof nftlib.error, "%s", e ? e : "dlopen failed");
    return nftlib.error;
  }
  struct {
    const char *name;
    void **slot;
  } syms[] = {
      {"nft_ctx_new", (void **)&nftlib.ctx_new},
      {"nft_ctx_free", (void **)&nftlib.ctx_free},
      {"nft_ctx_buffer_output", (void **)&nftlib.buffer_output},
      {"nft_ctx_buffer_error", (void **)&nftlib.buffer_error},
      {"nft_ctx_get_output_buffer", (void **)&nftlib.get_output},
      {"nft_ctx_get_error_buffer", (void **)&nftlib.get_error},
      {"nft_ctx_output_set_flags", (void **)&nftlib.set_flags},
      {"nft_run_cmd_from_buffer", (void **)&nftlib.run},
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].slot = dlsym(dl, syms[i].name);
    if (!*syms[i].slot) {
      snprintf(nftlib.error, sizeof nftlib.error, "%s: symbol %s not found", NFT_LIBRARY, syms[i].name);
      dlclose(dl);
      return nftlib.error;
    }
  }
  return NULL; /* the library stays loaded for the life of the process */
}

typedef struct {
  struct nft_ctx *ctx;
  uv_mutex_t lock;   /* one command buffer at a time per context (libnftables is not reentrant) */
  int pending;       /* queued or running jobs */
  bool closed;       /* nftClose() was called: free once pending drops to 0 */
  bool finalized;    /* the JS external was collected */
} nft_handle_t;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  nft_handle_t *h;
  char *cmd;
  unsigned int flags;
  int rc;
  char *out;
  char *err;
  double ms;
} nft_job_t;

static void nft_handle_maybe_free(nft_handle_t *h) {
  if (h->pending > 0 || !h->finalized) return;
  if (h->ctx) nftlib.ctx_free(h->ctx);
  h->ctx = NULL;
  uv_mutex_destroy(&h->lock);
  free(h);
}

static void nft_handle_release_ctx(nft_handle_t *h) {
  if (h->pending > 0 || !h->closed || !h->ctx) return;
  nftlib.ctx_free(h->ctx);
  h->ctx = NULL;
}

static void nft_handle_finalize(napi_env env, void *data, void *hint) {
  nft_handle_t *h = (nft_handle_t *)data;
  h->finalized = true;
  h->closed = true;
  nft_handle_release_ctx(h);
  nft_handle_maybe_free(h);
}

static double monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *dup_or_empty(const char *s) {
  char *d = strdup(s ? s : "");
  return d;
}

/* Thread pool: runs the command buffer. No N-API calls here. */
static void nft_job_execute(napi_env env, void *data) {
  nft_job_t *j = (nft_job_t *)data;
  uv_mutex_lock(&j->h->lock);
  double t0 = monotonic_ms();
  nftlib.set_flags(j->h->ctx, j->flags);
  j->rc = nftlib.run(j->h->ctx, j->cmd);
  /* get_*_buffer returns what was printed since the previous call and rewinds the buffer. */
  j->out = dup_or_empty(nftlib.get_output(j->h->ctx));
  j->err = dup_or_empty(nftlib.get_error(j->h->ctx));
  j->ms = monotonic_ms() - t0;
  uv_mutex_unlock(&j->h->lock);
}

static void nft_job_complete(napi_env env, napi_status status, void *data) {
  nft_job_t *j = (nft_job_t *)data;
  napi_value result = NULL, v;
  bool ok = status == napi_ok && j->out && j->err;
  if (ok) {
    ok = napi_create_object(env, &result) == napi_ok &&
         napi_create_int32(env, j->rc, &v) == napi_ok &&
         napi_set_named_property(env, result, "rc", v) == napi_ok &&
         napi_create_string_utf8(env, j->out, NAPI_AUTO_LENGTH, &v) == napi_ok &&
         napi_set_named_property(env, result, "output", v) == napi_ok &&
         napi_create_string_utf8(env, j->err, NAPI_AUTO_LENGTH, &v) == napi_ok &&
         napi_set_named_property(env, result, "error", v) == napi_ok &&
         napi_create_double(env, j->ms, &v) == napi_ok &&
         napi_set_named_property(env, result, "ms", v) == napi_ok;
  }
  if (ok) {
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    napi_value e = make_errno_error(env, "nft_run_cmd_from_buffer", status == napi_cancelled ? ECANCELED : ENOMEM);
    if (!e) napi_get_undefined(env, &e);
    napi_reject_deferred(env, j->deferred, e);
  }
  napi_delete_async_work(env, j->work);
  nft_handle_t *h = j->h;
  h->pending--;
  free(j->cmd);
  free(j->out);
  free(j->err);
  free(j);
  nft_handle_release_ctx(h);
  nft_handle_maybe_free(h);
}

/* nftLoad() -> null, or a message saying why libnftables cannot be used. */
static napi_value nft_load(napi_env env, napi_callback_info info) {
  const char *err = nftlib_load();
  napi_value out;
  if (err) CALL(env, napi_create_string_utf8(env, err, NAPI_AUTO_LENGTH, &out));
  else CALL(env, napi_get_null(env, &out));
  return out;
}

/* nftOpen() -> handle (external). Throws E... when the library cannot be loaded. */
static napi_value nft_open(napi_env env, napi_callback_info info) {
  const char *err = nftlib_load();
  if (err) {
    napi_throw_error(env, "ENOENT", err);
    return NULL;
  }
  struct nft_ctx *ctx = nftlib.ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) return throw_errno(env, "nft_ctx_new", ENOMEM);
  if (nftlib.buffer_output(ctx) != 0 || nftlib.buffer_error(ctx) != 0) {
    nftlib.ctx_free(ctx);
    return throw_errno(env, "nft_ctx_buffer_output", ENOMEM);
  }
  nft_handle_t *h = calloc(1, sizeof *h);
  if (!h) {
    nftlib.ctx_free(ctx);
    return throw_errno(env, "malloc", ENOMEM);
  }
  h->ctx = ctx;
  if (uv_mutex_init(&h->lock) != 0) {
    nftlib.ctx_free(ctx);
    free(h);
    return throw_errno(env, "uv_mutex_init", ENOMEM);
  }
  napi_value external;
  if (napi_create_external(env, h, nft_handle_finalize, NULL, &external) != napi_ok) {
    nftlib.ctx_free(ctx);
    uv_mutex_destroy(&h->lock);
    free(h);
    throw_last_napi_error(env);
    return NULL;
  }
  return external;
}

static bool arg_nft(napi_env env, napi_value v, nft_handle_t **out) {
  return arg_external(env, v, "handle must be an nftables handle", (void **)out);
}

/* nftRun(handle, commands, outputFlags) -> Promise<{ rc, output, error, ms }>. The buffer runs on
 * the libuv thread pool; `ms` is the time libnftables took (parse + netlink transaction). */
static napi_value nft_run(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  nft_handle_t *h;
  int32_t flags;
  if (!get_args(env, info, 3, argv) || !arg_nft(env, argv[0], &h) ||
      !arg_int(env, argv[2], 0, INT32_MAX, "flags", &flags))
    return NULL;
  if ((unsigned)flags & ~NFT_OUTPUT_FLAGS_ALLOWED) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "unsupported nftables output flags");
    return NULL;
  }
  if (h->closed) return throw_errno(env, "nft_run_cmd_from_buffer", EBADF);
  size_t len = 0;
  napi_valuetype t;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) != napi_ok)
    return throw_type(env, "commands must be a string");
  nft_job_t *j = calloc(1, sizeof *j);
  char *cmd = malloc(len + 1);
  if (!j || !cmd) {
    free(j);
    free(cmd);
    return throw_errno(env, "malloc", ENOMEM);
  }
  size_t copied = 0;
  if (napi_get_value_string_utf8(env, argv[1], cmd, len + 1, &copied) != napi_ok) {
    free(j);
    free(cmd);
    throw_last_napi_error(env);
    return NULL;
  }
  j->h = h;
  j->cmd = cmd;
  j->flags = (unsigned)flags;
  napi_value promise, name;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "keepalive:nft", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, nft_job_execute, nft_job_complete, j, &j->work) != napi_ok) {
    free(j->cmd);
    free(j);
    throw_last_napi_error(env);
    return NULL;
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    free(j->cmd);
    free(j);
    throw_last_napi_error(env);
    return NULL;
  }
  h->pending++;
  return promise;
}

/* nftClose(handle). Idempotent; queued commands still run, then the context is freed. */
static napi_value nft_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  nft_handle_t *h;
  if (!get_args(env, info, 1, argv) || !arg_nft(env, argv[0], &h)) return NULL;
  h->closed = true;
  nft_handle_release_ctx(h);
  return NULL;
}

/* Resolves `d` with `result` when ok, else rejects it with an errno error for `where`. */
static void settle_deferred(napi_env env, napi_deferred d, bool ok, napi_value result, const char *where, int err) {
  if (ok) {
    napi_resolve_deferred(env, d, result);
    return;
  }
  napi_value e = make_errno_error(env, where, err ? err : ENOMEM);
  if (!e) napi_get_undefined(env, &e);
  napi_reject_deferred(env, d, e);
}

/* Queues `data` as async work on the thread pool; returns its promise, or NULL with an exception
 * pending (the caller still owns `data` then). */
static napi_value queue_promise_work(napi_env env, const char *name, napi_async_execute_callback execute,
                                     napi_async_complete_callback complete, void *data, napi_deferred *deferred,
                                     napi_async_work *work) {
  napi_value promise, resource;
  if (napi_create_promise(env, deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource) != napi_ok ||
      napi_create_async_work(env, NULL, resource, execute, complete, data, work) != napi_ok) {
    throw_last_napi_error(env);
    return NULL;
  }
  if (napi_queue_async_work(env, *work) != napi_ok) {
    napi_delete_async_work(env, *work);
    throw_last_napi_error(env);
    return NULL;
  }
  return promise;
}

/* One nfnetlink request on a fresh NETLINK_NETFILTER socket (thread pool only): sends `req`,
 * hands every answer message to `on_msg` (when given) until NLMSG_DONE, an error, or an ack
 * (`ack_only`), or until *stop is set by the callback. Returns 0 or an errno with *where set; an
 * ENOENT answer is returned as ENOENT for the caller to judge. */
typedef void (*nl_msg_fn)(const struct nlmsghdr *h, void *arg);

static int nfnl_request(struct nlmsghdr *req, nl_msg_fn on_msg, void *arg, const int *stop, const char **where) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) {
    *where = "socket(NETLINK_NETFILTER)";
    return errno;
  }
  int rcvbuf = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (sendto(fd, req, req->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int err = errno;
    close(fd);
    *where = "sendto";
    return err;
  }
  size_t bufsize = 1 << 16;
  char *buf = malloc(bufsize);
  if (!buf) {
    close(fd);
    *where = "malloc";
    return ENOMEM;
  }
  int err = 0;
  bool done = false;
  while (!done && !err && !(stop && *stop)) {
    ssize_t n = recv(fd, buf, bufsize, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      *where = "recv";
      break;
    }
    if (n == 0) break;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        done = true;
        break;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = (const struct nlmsgerr *)NLMSG_DATA(h);
        if (e->error != 0) {
          err = -e->error;
          *where = "netlink answer";
        }
        done = true; /* an ack, or the error that ends the request */
        break;
      }
      if (on_msg) on_msg(h, arg);
      if (stop && *stop) break;
    }
  }
  free(buf);
  close(fd);
  return err;
}

/* ----------------------- nf_tables named counters (raw nfnetlink) ----------------------- */

/* libnftables 1.0.6 answers any `list counter(s)` by first caching the whole ruleset, every set's
 * elements included, so reading the counters would also dump every connection-table entry. This
 * asks the kernel for the counter objects of one table only (NFT_MSG_GETOBJ dump filtered by
 * table and type), on the libuv thread pool. */

typedef struct {
  char name[NFT_OBJ_MAXNAMELEN];
  uint64_t packets;
  uint64_t bytes;
} ctr_entry_t;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int family;
  char table[NFT_TABLE_MAXNAMELEN];
  ctr_entry_t *entries;
  size_t count, cap;
  int err;           /* errno, 0 on success */
  const char *where; /* syscall that failed */
} ctr_job_t;

static uint64_t be64_read(const void *p) {
  const uint8_t *b = (const uint8_t *)p;
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | b[i];
  return v;
}

static void ctr_add_attr(struct nlmsghdr *nlh, uint16_t type, const void *data, uint16_t len) {
  struct nlattr *a = (struct nlattr *)((char *)nlh + NLMSG_ALIGN(nlh->nlmsg_len));
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + len);
  memcpy((char *)a + NLA_HDRLEN, data, len);
  nlh->nlmsg_len = NLMSG_ALIGN(nlh->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static bool ctr_push(ctr_job_t *j, const char *name, uint64_t packets, uint64_t bytes) {
  if (j->count == j->cap) {
    size_t cap = j->cap ? j->cap * 2 : 256;
    ctr_entry_t *n = realloc(j->entries, cap * sizeof *n);
    if (!n) return false;
    j->entries = n;
    j->cap = cap;
  }
  ctr_entry_t *e = &j->entries[j->count++];
  snprintf(e->name, sizeof e->name, "%s", name);
  e->packets = packets;
  e->bytes = bytes;
  return true;
}

/* Parses one NFT_MSG_NEWOBJ message of the dump. */
static void ctr_parse_obj(ctr_job_t *j, const struct nlmsghdr *nlh) {
  const char *name = NULL;
  uint64_t packets = 0, bytes = 0;
  size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
  while (off + NLA_HDRLEN <= nlh->nlmsg_len) {
    const struct nlattr *a = (const struct nlattr *)((const char *)nlh + off);
    if (a->nla_len < NLA_HDRLEN || off + a->nla_len > nlh->nlmsg_len) break;
    const char *payload = (const char *)a + NLA_HDRLEN;
    size_t plen = a->nla_len - NLA_HDRLEN;
    int type = a->nla_type & NLA_TYPE_MASK;
    if (type == NFTA_OBJ_NAME && plen > 0 && memchr(payload, '\0', plen)) {
      name = payload;
    } else if (type == NFTA_OBJ_DATA) {
      size_t o = 0;
      while (o + NLA_HDRLEN <= plen) {
        const struct nlattr *b = (const struct nlattr *)(payload + o);
        if (b->nla_len < NLA_HDRLEN || o + b->nla_len > plen) break;
        int bt = b->nla_type & NLA_TYPE_MASK;
        if (b->nla_len >= NLA_HDRLEN + 8) {
          if (bt == NFTA_COUNTER_PACKETS) packets = be64_read((const char *)b + NLA_HDRLEN);
          else if (bt == NFTA_COUNTER_BYTES) bytes = be64_read((const char *)b + NLA_HDRLEN);
        }
        o += NLA_ALIGN(b->nla_len);
      }
    }
    off += NLA_ALIGN(a->nla_len);
  }
  if (name && !ctr_push(j, name, packets, bytes)) {
    j->err = ENOMEM;
    j->where = "malloc";
  }
}

static void ctr_on_msg(const struct nlmsghdr *h, void *arg) {
  if ((h->nlmsg_type & 0xff) == NFT_MSG_NEWOBJ) ctr_parse_obj((ctr_job_t *)arg, h);
}

static void ctr_job_execute(napi_env env, void *data) {
  ctr_job_t *j = (ctr_job_t *)data;
  union {
    struct nlmsghdr nlh;
    char buf[512];
  } req;
  memset(&req, 0, sizeof req);
  req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
  req.nlh.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETOBJ;
  req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nlh.nlmsg_seq = 1;
  struct nfgenmsg *nfg = (struct nfgenmsg *)NLMSG_DATA(&req.nlh);
  nfg->nfgen_family = (uint8_t)j->family;
  nfg->version = NFNETLINK_V0;
  ctr_add_attr(&req.nlh, NFTA_OBJ_TABLE, j->table, (uint16_t)(strlen(j->table) + 1));
  uint32_t type = htonl(NFT_OBJECT_COUNTER);
  ctr_add_attr(&req.nlh, NFTA_OBJ_TYPE, &type, sizeof type);
  const char *where = NULL;
  int err = nfnl_request(&req.nlh, ctr_on_msg, j, &j->err, &where);
  if (err && !j->err) {
    j->err = err;
    j->where = where;
  }
}

static void ctr_job_complete(napi_env env, napi_status status, void *data) {
  ctr_job_t *j = (ctr_job_t *)data;
  napi_value result = NULL;
  bool ok = status == napi_ok && j->err == 0 && napi_create_object(env, &result) == napi_ok;
  for (size_t i = 0; ok && i < j->count; i++) {
    napi_value pair, v;
    ok = napi_create_array_with_length(env, 2, &pair) == napi_ok &&
         napi_create_double(env, (double)j->entries[i].packets, &v) == napi_ok &&
         napi_set_element(env, pair, 0, v) == napi_ok &&
         napi_create_double(env, (double)j->entries[i].bytes, &v) == napi_ok &&
         napi_set_element(env, pair, 1, v) == napi_ok &&
         napi_set_named_property(env, result, j->entries[i].name, pair) == napi_ok;
  }
  settle_deferred(env, j->deferred, ok, result, j->where ? j->where : "nft counters", j->err);
  napi_delete_async_work(env, j->work);
  free(j->entries);
  free(j);
}

/* nftCounters(family, table) -> Promise<{ [name]: [packets, bytes] }>; family: 1 inet, 2 ip,
 * 5 netdev, 10 ip6 (NFPROTO_*). A missing table rejects with ENOENT. */
static napi_value nft_counters(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t family;
  char table[NFT_TABLE_MAXNAMELEN];
  size_t len = 0;
  napi_valuetype t;
  if (!get_args(env, info, 2, argv) || !arg_int(env, argv[0], 0, 255, "family", &family)) return NULL;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, argv[1], table, sizeof table, &len) != napi_ok || len == 0 ||
      len >= sizeof table - 1)
    return throw_type(env, "table must be a table name");
  ctr_job_t *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "malloc", ENOMEM);
  j->family = family;
  memcpy(j->table, table, len + 1);
  napi_value promise = queue_promise_work(env, "keepalive:nft-counters", ctr_job_execute, ctr_job_complete, j, &j->deferred, &j->work);
  if (!promise) {
    free(j);
  }
  return promise;
}

/* ------------------------ conntrack counts by mark (raw ctnetlink) ------------------------ */

/* ActiveConn/InActConn of NAT services: one ctnetlink dump of the conntrack table, counted in C
 * by connection mark for the marks asked about (TCP ESTABLISHED = active, anything else =
 * inactive, as IPVS counts). At 100k entries this is a few tens of ms on the thread pool, where
 * `conntrack -L` plus parsing its text took about a second. */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  uint32_t *marks; /* sorted */
  uint32_t *active, *inactive;
  size_t n;
  uint64_t total; /* entries seen */
  int err;
  const char *where;
} ct_job_t;

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static const struct nlattr *nla_find(const char *p, size_t len, int type) {
  size_t o = 0;
  while (o + NLA_HDRLEN <= len) {
    const struct nlattr *a = (const struct nlattr *)(p + o);
    if (a->nla_len < NLA_HDRLEN || o + a->nla_len > len) return NULL;
    if ((a->nla_type & NLA_TYPE_MASK) == type) return a;
    o += NLA_ALIGN(a->nla_len);
  }
  return NULL;
}

#define NLA_PAYLOAD_PTR(a) ((const char *)(a) + NLA_HDRLEN)
#define NLA_PAYLOAD_LEN(a) ((size_t)(a)->nla_len - NLA_HDRLEN)

static void ct_count_one(ct_job_t *j, const struct nlmsghdr *h) {
  size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
  if (h->nlmsg_len < off) return;
  const char *attrs = (const char *)h + off;
  size_t len = h->nlmsg_len - off;
  j->total++;
  const struct nlattr *mark = nla_find(attrs, len, CTA_MARK);
  if (!mark || NLA_PAYLOAD_LEN(mark) < 4) return;
  uint32_t m;
  memcpy(&m, NLA_PAYLOAD_PTR(mark), 4);
  m = ntohl(m);
  uint32_t *hit = bsearch(&m, j->marks, j->n, sizeof *j->marks, cmp_u32);
  if (!hit) return;
  size_t idx = (size_t)(hit - j->marks);
  bool established = false;
  const struct nlattr *orig = nla_find(attrs, len, CTA_TUPLE_ORIG);
  const struct nlattr *proto = orig ? nla_find(NLA_PAYLOAD_PTR(orig), NLA_PAYLOAD_LEN(orig), CTA_TUPLE_PROTO) : NULL;
  const struct nlattr *num = proto ? nla_find(NLA_PAYLOAD_PTR(proto), NLA_PAYLOAD_LEN(proto), CTA_PROTO_NUM) : NULL;
  if (num && NLA_PAYLOAD_LEN(num) >= 1 && *(const uint8_t *)NLA_PAYLOAD_PTR(num) == IPPROTO_TCP) {
    const struct nlattr *pi = nla_find(attrs, len, CTA_PROTOINFO);
    const struct nlattr *tcp = pi ? nla_find(NLA_PAYLOAD_PTR(pi), NLA_PAYLOAD_LEN(pi), CTA_PROTOINFO_TCP) : NULL;
    const struct nlattr *st = tcp ? nla_find(NLA_PAYLOAD_PTR(tcp), NLA_PAYLOAD_LEN(tcp), CTA_PROTOINFO_TCP_STATE) : NULL;
    established = st && NLA_PAYLOAD_LEN(st) >= 1 && *(const uint8_t *)NLA_PAYLOAD_PTR(st) == TCP_CONNTRACK_ESTABLISHED;
  }
  if (established) j->active[idx]++;
  else j->inactive[idx]++;
}

static void ct_on_msg(const struct nlmsghdr *h, void *arg) {
  ct_count_one((ct_job_t *)arg, h);
}

static void ct_job_execute(napi_env env, void *data) {
  ct_job_t *j = (ct_job_t *)data;
  struct {
    struct nlmsghdr nlh;
    struct nfgenmsg nfg;
  } req;
  memset(&req, 0, sizeof req);
  req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
  req.nlh.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nlh.nlmsg_seq = 1;
  req.nfg.nfgen_family = AF_UNSPEC; /* both families */
  req.nfg.version = NFNETLINK_V0;
  const char *where = NULL;
  int err = nfnl_request(&req.nlh, ct_on_msg, j, NULL, &where);
  if (err) {
    j->err = err;
    j->where = where;
  }
}

static void ct_job_complete(napi_env env, napi_status status, void *data) {
  ct_job_t *j = (ct_job_t *)data;
  napi_value result = NULL, counts = NULL, v;
  bool ok = status == napi_ok && j->err == 0 && napi_create_object(env, &result) == napi_ok &&
            napi_create_object(env, &counts) == napi_ok;
  for (size_t i = 0; ok && i < j->n; i++) {
    if (j->active[i] == 0 && j->inactive[i] == 0) continue;
    char key[16];
    snprintf(key, sizeof key, "%u", j->marks[i]);
    napi_value pair;
    ok = napi_create_array_with_length(env, 2, &pair) == napi_ok &&
         napi_create_uint32(env, j->active[i], &v) == napi_ok && napi_set_element(env, pair, 0, v) == napi_ok &&
         napi_create_uint32(env, j->inactive[i], &v) == napi_ok && napi_set_element(env, pair, 1, v) == napi_ok &&
         napi_set_named_property(env, counts, key, pair) == napi_ok;
  }
  ok = ok && napi_set_named_property(env, result, "counts", counts) == napi_ok &&
       napi_create_double(env, (double)j->total, &v) == napi_ok &&
       napi_set_named_property(env, result, "entries", v) == napi_ok;
  settle_deferred(env, j->deferred, ok, result, j->where ? j->where : "conntrack dump", j->err);
  napi_delete_async_work(env, j->work);
  free(j->marks);
  free(j->active);
  free(j->inactive);
  free(j);
}

/* conntrackCountByMark(marks: number[]) -> Promise<{ counts: { [mark]: [active, inactive] }, entries }> */
static napi_value ct_count_by_mark(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  bool is_array = false;
  uint32_t n = 0;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &n) != napi_ok)
    return throw_type(env, "marks must be an array of numbers");
  ct_job_t *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "malloc", ENOMEM);
  j->n = n;
  j->marks = calloc(n ? n : 1, sizeof *j->marks);
  j->active = calloc(n ? n : 1, sizeof *j->active);
  j->inactive = calloc(n ? n : 1, sizeof *j->inactive);
  if (!j->marks || !j->active || !j->inactive) {
    free(j->marks);
    free(j->active);
    free(j->inactive);
    free(j);
    return throw_errno(env, "malloc", ENOMEM);
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    double d;
    if (napi_get_element(env, argv[0], i, &el) != napi_ok || napi_get_value_double(env, el, &d) != napi_ok ||
        d < 0 || d > 4294967295.0) {
      free(j->marks);
      free(j->active);
      free(j->inactive);
      free(j);
      return throw_type(env, "marks must be an array of u32 numbers");
    }
    j->marks[i] = (uint32_t)d;
  }
  qsort(j->marks, j->n, sizeof *j->marks, cmp_u32);
  napi_value promise = queue_promise_work(env, "keepalive:conntrack", ct_job_execute, ct_job_complete, j, &j->deferred, &j->work);
  if (!promise) {
    free(j->marks);
    free(j->active);
    free(j->inactive);
    free(j);
  }
  return promise;
}

/* ------------------------ elements of one nf_tables set (raw nfnetlink) ------------------------ */

/* The entries of one connection or persistence table: one NFT_MSG_GETSETELEM dump of that set
 * (libnftables would first fetch every table's chains, sets and objects, about 3 ms of CPU per
 * call with 100 services, for each of the 200 tables a poll reads). */

typedef struct {
  uint8_t key[64];
  uint8_t keylen;
  bool has_data;
  uint32_t data;
  uint64_t timeout, expires; /* ms; 0 = none */
} se_entry_t;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int family;
  char table[NFT_TABLE_MAXNAMELEN];
  char set[NFT_SET_MAXNAMELEN];
  se_entry_t *entries;
  size_t count, cap;
  int err;
  const char *where;
} se_job_t;

static void se_parse_elem(se_job_t *j, const char *p, size_t len) {
  se_entry_t e;
  memset(&e, 0, sizeof e);
  const struct nlattr *k = nla_find(p, len, NFTA_SET_ELEM_KEY);
  const struct nlattr *kv = k ? nla_find(NLA_PAYLOAD_PTR(k), NLA_PAYLOAD_LEN(k), NFTA_DATA_VALUE) : NULL;
  if (!kv || NLA_PAYLOAD_LEN(kv) > sizeof e.key) return;
  e.keylen = (uint8_t)NLA_PAYLOAD_LEN(kv);
  memcpy(e.key, NLA_PAYLOAD_PTR(kv), e.keylen);
  const struct nlattr *d = nla_find(p, len, NFTA_SET_ELEM_DATA);
  const struct nlattr *dv = d ? nla_find(NLA_PAYLOAD_PTR(d), NLA_PAYLOAD_LEN(d), NFTA_DATA_VALUE) : NULL;
  if (dv && NLA_PAYLOAD_LEN(dv) >= 4) {
    /* A mark is stored in host order (it is loaded from skb->mark / ct->mark as is). */
    memcpy(&e.data, NLA_PAYLOAD_PTR(dv), 4);
    e.has_data = true;
  }
  const struct nlattr *t = nla_find(p, len, NFTA_SET_ELEM_TIMEOUT);
  if (t && NLA_PAYLOAD_LEN(t) >= 8) e.timeout = be64_read(NLA_PAYLOAD_PTR(t));
  const struct nlattr *x = nla_find(p, len, NFTA_SET_ELEM_EXPIRATION);
  if (x && NLA_PAYLOAD_LEN(x) >= 8) e.expires = be64_read(NLA_PAYLOAD_PTR(x));
  if (j->count == j->cap) {
    size_t cap = j->cap ? j->cap * 2 : 1024;
    se_entry_t *n = realloc(j->entries, cap * sizeof *n);
    if (!n) {
      j->err = ENOMEM;
      j->where = "malloc";
      return;
    }
    j->entries = n;
    j->cap = cap;
  }
  j->entries[j->count++] = e;
}

static void se_on_msg(const struct nlmsghdr *h, void *arg) {
  se_job_t *j = (se_job_t *)arg;
  size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
  if (h->nlmsg_len <= off) return;
  const char *attrs = (const char *)h + off;
  size_t len = h->nlmsg_len - off;
  const struct nlattr *list = nla_find(attrs, len, NFTA_SET_ELEM_LIST_ELEMENTS);
  if (!list) return;
  const char *lp = NLA_PAYLOAD_PTR(list);
  size_t ll = NLA_PAYLOAD_LEN(list), o = 0;
  while (o + NLA_HDRLEN <= ll && !j->err) {
    const struct nlattr *el = (const struct nlattr *)(lp + o);
    if (el->nla_len < NLA_HDRLEN || o + el->nla_len > ll) break;
    if ((el->nla_type & NLA_TYPE_MASK) == NFTA_LIST_ELEM) se_parse_elem(j, NLA_PAYLOAD_PTR(el), NLA_PAYLOAD_LEN(el));
    o += NLA_ALIGN(el->nla_len);
  }
}

static void se_job_execute(napi_env env, void *data) {
  se_job_t *j = (se_job_t *)data;
  union {
    struct nlmsghdr nlh;
    char buf[1024];
  } req;
  memset(&req, 0, sizeof req);
  req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
  req.nlh.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM;
  req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nlh.nlmsg_seq = 1;
  struct nfgenmsg *nfg = (struct nfgenmsg *)NLMSG_DATA(&req.nlh);
  nfg->nfgen_family = (uint8_t)j->family;
  nfg->version = NFNETLINK_V0;
  ctr_add_attr(&req.nlh, NFTA_SET_ELEM_LIST_TABLE, j->table, (uint16_t)(strlen(j->table) + 1));
  ctr_add_attr(&req.nlh, NFTA_SET_ELEM_LIST_SET, j->set, (uint16_t)(strlen(j->set) + 1));
  const char *where = NULL;
  int err = nfnl_request(&req.nlh, se_on_msg, j, &j->err, &where);
  if (err && !j->err) {
    j->err = err;
    j->where = where;
  }
}

static void se_job_complete(napi_env env, napi_status status, void *data) {
  se_job_t *j = (se_job_t *)data;
  napi_value result = NULL, v;
  bool ok = status == napi_ok && j->err == 0 && napi_create_array_with_length(env, j->count, &result) == napi_ok;
  static const char hexd[] = "0123456789abcdef";
  for (size_t i = 0; ok && i < j->count; i++) {
    se_entry_t *e = &j->entries[i];
    char key[129];
    for (size_t b = 0; b < e->keylen; b++) {
      key[2 * b] = hexd[e->key[b] >> 4];
      key[2 * b + 1] = hexd[e->key[b] & 15];
    }
    key[2 * e->keylen] = '\0';
    napi_value row;
    ok = napi_create_array_with_length(env, 4, &row) == napi_ok &&
         napi_create_string_utf8(env, key, NAPI_AUTO_LENGTH, &v) == napi_ok && napi_set_element(env, row, 0, v) == napi_ok &&
         (e->has_data ? napi_create_uint32(env, e->data, &v) : napi_get_null(env, &v)) == napi_ok && napi_set_element(env, row, 1, v) == napi_ok &&
         napi_create_double(env, (double)e->expires, &v) == napi_ok && napi_set_element(env, row, 2, v) == napi_ok &&
         napi_create_double(env, (double)e->timeout, &v) == napi_ok && napi_set_element(env, row, 3, v) == napi_ok &&
         napi_set_element(env, result, (uint32_t)i, row) == napi_ok;
  }
  settle_deferred(env, j->deferred, ok, result, j->where ? j->where : "set elements", j->err);
  napi_delete_async_work(env, j->work);
  free(j->entries);
  free(j);
}

/* nftSetElements(family, table, set) -> Promise<Array<[keyHex, data|null, expiresMs, timeoutMs]>> */
static napi_value nft_set_elements(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t family;
  size_t tlen = 0, slen = 0;
  se_job_t *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "malloc", ENOMEM);
  napi_valuetype t1, t2;
  if (!get_args(env, info, 3, argv) || !arg_int(env, argv[0], 0, 255, "family", &family)) {
    free(j);
    return NULL;
  }
  if (napi_typeof(env, argv[1], &t1) != napi_ok || t1 != napi_string || napi_typeof(env, argv[2], &t2) != napi_ok || t2 != napi_string ||
      napi_get_value_string_utf8(env, argv[1], j->table, sizeof j->table, &tlen) != napi_ok || tlen == 0 || tlen >= sizeof j->table - 1 ||
      napi_get_value_string_utf8(env, argv[2], j->set, sizeof j->set, &slen) != napi_ok || slen == 0 || slen >= sizeof j->set - 1) {
    free(j);
    return throw_type(env, "table and set must be names");
  }
  j->family = family;
  napi_value promise = queue_promise_work(env, "keepalive:nft-setelem", se_job_execute, se_job_complete, j, &j->deferred, &j->work);
  if (!promise) {
    free(j);
  }
  return promise;
}

/* conntrackDeleteByMark(marks) -> Promise<void>: deletes the conntrack entries carrying any of
 * these connection marks (one filtered IPCTNL_MSG_CT_DELETE per mark): how a NAT service's
 * connections end when its drain is over. */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  uint32_t *marks;
  size_t n;
  int err;
  const char *where;
} ctdel_job_t;

static void ctdel_job_execute(napi_env env, void *data) {
  ctdel_job_t *j = (ctdel_job_t *)data;
  for (size_t i = 0; i < j->n && !j->err; i++) {
    union {
      struct nlmsghdr nlh;
      char b[256];
    } req;
    memset(&req, 0, sizeof req);
    req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
    req.nlh.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.nlh.nlmsg_seq = (uint32_t)(i + 1);
    struct nfgenmsg *nfg = (struct nfgenmsg *)NLMSG_DATA(&req.nlh);
    nfg->nfgen_family = AF_UNSPEC;
    nfg->version = NFNETLINK_V0;
    uint32_t mark = htonl(j->marks[i]), mask = htonl(0xffffffffu);
    ctr_add_attr(&req.nlh, CTA_MARK, &mark, sizeof mark);
    ctr_add_attr(&req.nlh, CTA_MARK_MASK, &mask, sizeof mask);
    const char *where = NULL;
    int err = nfnl_request(&req.nlh, NULL, NULL, NULL, &where);
    /* ENOENT: nothing carried this mark. */
    if (err && err != ENOENT) {
      j->err = err;
      j->where = where;
    }
  }
}

static void ctdel_job_complete(napi_env env, napi_status status, void *data) {
  ctdel_job_t *j = (ctdel_job_t *)data;
  napi_value u;
  napi_get_undefined(env, &u);
  settle_deferred(env, j->deferred, status == napi_ok && j->err == 0, u, j->where ? j->where : "conntrack delete", j->err);
  napi_delete_async_work(env, j->work);
  free(j->marks);
  free(j);
}

static napi_value ct_delete_by_mark(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  bool is_array = false;
  uint32_t n = 0;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &n) != napi_ok)
    return throw_type(env, "marks must be an array of numbers");
  ctdel_job_t *j = calloc(1, sizeof *j);
  if (!j || !(j->marks = calloc(n ? n : 1, sizeof *j->marks))) {
    free(j);
    return throw_errno(env, "malloc", ENOMEM);
  }
  j->n = n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    double d;
    if (napi_get_element(env, argv[0], i, &el) != napi_ok || napi_get_value_double(env, el, &d) != napi_ok || d < 0 || d > 4294967295.0) {
      free(j->marks);
      free(j);
      return throw_type(env, "marks must be an array of u32 numbers");
    }
    j->marks[i] = (uint32_t)d;
  }
  napi_value promise = queue_promise_work(env, "keepalive:conntrack-delete", ctdel_job_execute, ctdel_job_complete, j, &j->deferred, &j->work);
  if (!promise) {
    free(j->marks);
    free(j);
  }
  return promise;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"packetOpen", NULL, packet_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"packetSend", NULL, packet_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, fd_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flockExclusive", NULL, fd_flock_exclusive, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raw4Open", NULL, raw4_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raw4Send", NULL, raw4_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reusePortListen", NULL, reuseport_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raiseThreadNice", NULL, raise_thread_nice, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raw6Open", NULL, raw6_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raw6Send", NULL, raw6_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raw6Close", NULL, raw6_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nftLoad", NULL, nft_load, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nftOpen", NULL, nft_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nftRun", NULL, nft_run, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nftClose", NULL, nft_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nftCounters", NULL, nft_counters, NULL, NULL, NULL, napi_enumerable, NULL},
      {"conntrackCountByMark", NULL, ct_count_by_mark, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nftSetElements", NULL, nft_set_elements, NULL, NULL, NULL, napi_enumerable, NULL},
      {"conntrackDeleteByMark", NULL, ct_delete_by_mark, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return NULL;
  if (!check_engine_init(env, exports)) return NULL;
  if (!relay_engine_init(env, exports)) return NULL;
  if (!precise_timer_init(env, exports)) return NULL;
  return vrrp_sender_init(env, exports);
}
