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
 * Only node_api.h is used. Every error thrown carries `code` = errno name (EPERM, ENODEV...),
 * `errno` and `syscall`, so the TypeScript layer can map it to a coded KeepaliveError.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "check_engine.h"
#include "precise_timer.h"

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
  napi_env env = s->env;
  napi_value cb, recv;
  if (!s->callback || napi_get_reference_value(env, s->callback, &cb) != napi_ok || !cb) return;
  /* MakeCallback needs an object receiver (undefined would throw in ToObject). */
  napi_get_global(env, &recv);
  if (napi_make_callback(env, s->async, recv, cb, argc, argv, NULL) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
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

/* reusePortListen(address, port, backlog) -> fd of a listening TCP socket with SO_REUSEPORT (and
 * SO_REUSEADDR, as Node's own listen sets): each proxy worker thread listens on its own socket of
 * the same address:port and the kernel spreads the connections over them. Node's net.Server of
 * Node 20 cannot set SO_REUSEPORT; it adopts the fd with listen({ fd }). */
static napi_value reuseport_listen(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char addr[INET6_ADDRSTRLEN + 1];
  size_t addr_len = 0;
  int32_t port, backlog;
  napi_valuetype t;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, argv[0], addr, sizeof addr, &addr_len) != napi_ok || addr_len >= sizeof addr - 1)
    return throw_type(env, "address must be an IP address string");
  if (!arg_int(env, argv[1], 0, 65535, "port", &port) || !arg_int(env, argv[2], 1, 65535, "backlog", &backlog)) return NULL;
  struct sockaddr_storage ss;
  socklen_t sslen;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    sslen = sizeof *s4;
  } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    sslen = sizeof *s6;
  } else {
    return throw_type(env, "address must be an IP address string");
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  const char *failed = NULL;
  if (set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) failed = "setsockopt(SO_REUSEADDR)";
  else if (set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) failed = "setsockopt(SO_REUSEPORT)";
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

static bool arg_raw6(napi_env env, napi_value v, raw6_t **out) {
  napi_valuetype t;
  void *data = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, v, &data) != napi_ok || !data) {
    throw_type(env, "handle must be a raw6 handle");
    return false;
  }
  *out = (raw6_t *)data;
  return true;
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

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"packetOpen", NULL, packet_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"packetSend", NULL, packet_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, fd_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raw4Open", NULL, raw4_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raw4Send", NULL, raw4_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reusePortListen", NULL, reuseport_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raiseThreadNice", NULL, raise_thread_nice, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raw6Open", NULL, raw6_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raw6Send", NULL, raw6_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"raw6Close", NULL, raw6_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return NULL;
  if (!check_engine_init(env, exports)) return NULL;
  return precise_timer_init(env, exports);
}
