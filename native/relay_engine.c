/*
 * relay_engine: the byte path of the user-space proxy's TCP services (lb_kind PROXY), in C.
 *
 * Why: with node:net every proxied connection costs two Socket objects, two stream pairs, a pipe
 * each way and a dozen closures, and every chunk goes through JavaScript (~360 us of CPU per
 * connection on this box against HAProxy's 65). Here a connection is one malloc'ed struct, its
 * two descriptors sit in one epoll set, and bytes move recv -> send through one scratch buffer
 * without JavaScript. A direction that turns out to be a stream (past RL_SPLICE_AFTER bytes, full
 * 64 KiB reads) moves on with splice(2) through a pipe of its own: no copy through user space at
 * all; what sits in the pipe counts as pending output exactly like buffered bytes.
 *
 * Where it runs: on the proxy worker thread's own event loop (one engine per worker; each worker
 * is already a thread of its own, off the VRRP loop). The epoll descriptor is watched by a uv_poll
 * handle; when it is readable the engine drains it, moves bytes, and hands the decisions it cannot
 * take to JavaScript in one batch per loop turn: a client was accepted (JS schedules: persistence,
 * the 13 schedulers, thresholds, sorry server, limits all stay in TypeScript), a real-server
 * connect succeeded or failed (JS retries another server or gives up), a side sent FIN (the
 * connection counts as inactive), the connection is gone (with its byte counts). JS answers with
 * direct calls (relayConnect, relayDestroy) in the same turn: no thread hop, no lock.
 *
 * One connection: accept4 -> [JS: pick] -> socket + non-blocking connect (bounded by the timeout
 * JS gives) -> optional bytes first (the PROXY protocol header) -> relay both ways. The client is
 * not read until the real server accepted (like pauseOnConnect). A FIN read from one side is
 * passed on as shutdown(SHUT_WR) once that direction's buffered bytes are written, at the end of
 * the next loop turn's poll (fin_due: when the other side's FIN arrives meanwhile, close() sends
 * both and no shutdown is needed — the usual Connection: close exchange); the connection
 * ends when both directions did so, or at once on an error from either side (both closed). An
 * established connection idle for the engine's timeout (after a FIN: its fin timeout) is closed.
 * Each side is registered once, edge-triggered (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET): two
 * epoll_ctl per connection in all (level-triggered masks cost four with Connection: close).
 *
 * JS API (registered by relay_engine_init):
 *   relayEngine(cb) -> engine   cb(events: Float64Array, addresses: string[]) gets batches of
 *                               RL_EV_SIZE doubles per event (RL_E_* below; ACCEPT's client address
 *                               is the next string of `addresses`).
 *   relayListen(engine, fd) -> listener id        the engine owns fd from then on
 *   relayUnlisten(engine, id)                     closes it (accepted clients stay)
 *   relayConnect(engine, conn, address, port, timeoutMs, head|null) -> 0 | errno
 *   relayDestroy(engine, conn, out: Float64Array) -> bool   closes both sides, no event; out = [in, out bytes]
 *   relayBytes(engine, conn, out: Float64Array) -> bool     live byte counts
 *   relayTimeouts(engine, idleMs, finMs)
 *   relaySplice(engine, afterBytes)               splice(2) for streams past afterBytes (-1: never)
 *   relayStats(engine, out: Float64Array(4))      [bytes spliced, pipes made, pipes in use, fallbacks]
 *   relayClose(engine)                            every listener and connection closed
 * The engine goes away with its Node environment (cleanup hook; uv handles closed there).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* splice, pipe2, F_SETPIPE_SZ */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "napi_callback.h"
#include "relay_engine.h"

/* Event kinds, and the layout of one event: [kind, conn, a, b, c, d]. */
#define RL_E_ACCEPT 1        /* a = listener id, b = client port; address in addresses[] */
#define RL_E_CONNECTED 2
#define RL_E_CONNECT_FAILED 3 /* a = errno, or -1: timeout */
#define RL_E_HALF_CLOSED 4   /* first FIN (either side) */
#define RL_E_CLOSED 5        /* a = in bytes, b = out bytes, c = reason (RL_R_*) */
#define RL_EV_SIZE 6

#define RL_R_DONE 0  /* both directions finished */
#define RL_R_ERROR 1 /* an error on either side */
#define RL_R_IDLE 2  /* idle timeout */

#define RL_BUF 65536
#define RL_MAX_EVENTS 256
#define RL_ACCEPTS_PER_WAKE 64
#define RL_READS_PER_EVENT 8
#define RL_IDX_BITS 22
#define RL_IDX_MASK ((1u << RL_IDX_BITS) - 1)
#define RL_SIDE_LISTENER 2u
/* After EMFILE/ENFILE on accept the listener is left alone this long (level-triggered epoll
 * would otherwise spin on the connection it cannot take). */
#define RL_ACCEPT_BACKOFF_NS 100000000ull
/* Zero-copy for bulk: a direction that has moved RL_SPLICE_AFTER bytes and whose last recv filled
 * the whole buffer (a stream, not request/response chatter) moves its bytes with splice(2)
 * through a pipe of its own: socket -> pipe -> socket, page references instead of two copies
 * through user space. A direction holds a pipe only while bytes are in it: taken from the engine's
 * pool for a splice in, given back as soon as the splice out emptied it (as HAProxy does), so
 * pipes in use follow the streams blocked on a full destination, not the open connections. At
 * most RL_PIPES_MAX per engine (in use + pooled; 2 descriptors each): past that a stream reads
 * with recv until one is free. relaySplice(engine, bytes) changes the threshold; -1: off. */
#define RL_SPLICE_AFTER (256 * 1024)
#define RL_PIPE_SIZE (256 * 1024)
#define RL_PIPES_MAX 1024

enum { C_ACCEPTED = 1, C_CONNECTING, C_RELAY };

typedef struct rl_dir {
  char *buf;    /* bytes read but not yet written (malloc'ed on first need) */
  uint32_t off, len;
  int pipe[2];  /* splicing: read end, write end (-1: none) */
  uint32_t plen; /* bytes in the pipe, not yet written: pending like len */
  uint32_t pcap; /* what one splice into the pipe asks for (its size) */
  bool splice;  /* this direction splices (its pipe is taken when the buffer is empty) */
  bool nosplice; /* splice failed here once (or is off): recv/send only */
  bool eof;     /* the source sent FIN */
  bool shut;    /* the FIN went on to the destination (or goes with its close) */
  bool fin_due; /* EOF read and everything written; the FIN goes at the end of the next poll */
} rl_dir;

/* A direction is finished once its FIN went on or is due. */
static inline bool dir_done(const rl_dir *d) { return d->shut || d->fin_due; }
/* Bytes read from the source and not yet written to the destination (buffer or pipe). */
static inline uint32_t pending(const rl_dir *d) { return d->len + d->plen; }

typedef struct rl_conn {
  struct rl_conn *prev, *next; /* in one of the engine's timeout lists */
  int list;                    /* which one (L_*) */
  uint32_t id;
  int state;
  int cfd, ufd;
  uint32_t cmask, umask; /* registered epoll masks; 0 = not registered */
  rl_dir d[2];           /* 0: client -> real server (in), 1: real server -> client (out) */
  double bytes[2];
  uint64_t deadline_ns;  /* connecting: the connect timeout */
  uint64_t active_ns;    /* relaying: last byte moved */
  bool half_reported;
} rl_conn;

typedef struct {
  rl_conn *head, *tail;
} rl_list;
enum { L_NONE = 0, L_CONNECTING, L_OPEN, L_FIN };

typedef struct {
  int fd; /* -1: free */
  uint32_t gen;
  bool watched;
  uint64_t backoff_until;
} rl_listener;

typedef struct rl_engine {
  napi_env env;
  napi_ref callback;
  napi_async_context async_ctx;
  int epfd;
  uv_poll_t poll;
  uv_timer_t timer;
  /* FINs due (deferred shutdowns): conn ids and the loop turn each was queued in. */
  uv_check_t check;
  uv_idle_t idle;
  bool check_initialized, idle_initialized, idle_active;
  uint64_t turn;
  struct rl_fin { uint32_t id; uint64_t turn; } *fins;
  size_t nfins, cap_fins;
  bool closed, poll_initialized, timer_initialized, timer_armed, delivering;
  uint64_t timer_at;
  uint64_t idle_ns, fin_ns;
  /* connections by index; id = generation << RL_IDX_BITS | index */
  rl_conn **slots;
  uint32_t *gens;
  uint32_t nslots, *free_idx, nfree;
  rl_list lists[4];
  rl_listener *listeners;
  uint32_t nlisteners;
  bool backoff;
  /* pending events */
  double *ev;
  size_t nev, cap_ev;
  char (*addrs)[INET6_ADDRSTRLEN];
  size_t naddrs, cap_addrs;
  char *scratch; /* RL_BUF bytes */
  /* splicing: threshold (-1: off), free pipes, and counts (relayStats) */
  double splice_after;
  struct rl_pipe { int fd[2]; uint32_t size; } *pipes; /* the free ones */
  uint32_t npipes, pipes_used;
  double st_pipes_made, st_spliced, st_splice_fallbacks;
} rl_engine;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------------------------ */
/* lists, slots, events */

static void list_unlink(rl_engine *e, rl_conn *c) {
  if (c->list == L_NONE) return;
  rl_list *l = &e->lists[c->list];
  if (c->prev) c->prev->next = c->next;
  else l->head = c->next;
  if (c->next) c->next->prev = c->prev;
  else l->tail = c->prev;
  c->prev = c->next = NULL;
  c->list = L_NONE;
}

static void list_append(rl_engine *e, rl_conn *c, int which) {
  list_unlink(e, c);
  rl_list *l = &e->lists[which];
  c->prev = l->tail;
  c->next = NULL;
  if (l->tail) l->tail->next = c;
  else l->head = c;
  l->tail = c;
  c->list = which;
}

/* Connecting list: ordered by deadline (timeouts differ per service; mostly appended). */
static void list_insert_connecting(rl_engine *e, rl_conn *c) {
  list_unlink(e, c);
  rl_list *l = &e->lists[L_CONNECTING];
  rl_conn *after = l->tail;
  while (after && after->deadline_ns > c->deadline_ns) after = after->prev;
  c->list = L_CONNECTING;
  c->prev = after;
  c->next = after ? after->next : l->head;
  if (c->next) c->next->prev = c;
  else l->tail = c;
  if (after) after->next = c;
  else l->head = c;
}

static bool push_event(rl_engine *e, double kind, double id, double a, double b, double c) {
  if (e->nev + RL_EV_SIZE > e->cap_ev) {
    size_t cap = e->cap_ev ? e->cap_ev * 2 : 64 * RL_EV_SIZE;
    double *n = realloc(e->ev, cap * sizeof *n);
    if (!n) return false;
    e->ev = n;
    e->cap_ev = cap;
  }
  double *r = e->ev + e->nev;
  r[0] = kind, r[1] = id, r[2] = a, r[3] = b, r[4] = c, r[5] = 0;
  e->nev += RL_EV_SIZE;
  return true;
}

static rl_conn *conn_get(rl_engine *e, uint32_t id) {
  uint32_t idx = id & RL_IDX_MASK;
  if (idx >= e->nslots) return NULL;
  rl_conn *c = e->slots[idx];
  return c && c->id == id ? c : NULL;
}

static rl_conn *conn_new(rl_engine *e, int cfd) {
  uint32_t idx;
  if (e->nfree) {
    idx = e->free_idx[--e->nfree];
  } else {
    if (e->nslots > RL_IDX_MASK) return NULL;
    uint32_t n = e->nslots ? e->nslots * 2 : 256;
    if (n > RL_IDX_MASK + 1) n = RL_IDX_MASK + 1;
    rl_conn **s = realloc(e->slots, n * sizeof *s);
    if (!s) return NULL;
    e->slots = s;
    uint32_t *g = realloc(e->gens, n * sizeof *g);
    if (!g) return NULL;
    e->gens = g;
    uint32_t *f = realloc(e->free_idx, n * sizeof *f);
    if (!f) return NULL;
    e->free_idx = f;
    for (uint32_t i = e->nslots; i < n; i++) s[i] = NULL, g[i] = 0;
    /* indexes nslots+1 .. n-1 become free; nslots is taken now */
    for (uint32_t i = n - 1; i > e->nslots; i--) e->free_idx[e->nfree++] = i;
    idx = e->nslots;
    e->nslots = n;
  }
  rl_conn *c = calloc(1, sizeof *c);
  if (!c) {
    e->free_idx[e->nfree++] = idx;
    return NULL;
  }
  e->gens[idx] = (e->gens[idx] + 1) & ((1u << (32 - RL_IDX_BITS)) - 1);
  if (e->gens[idx] == 0) e->gens[idx] = 1;
  c->id = (e->gens[idx] << RL_IDX_BITS) | idx;
  c->cfd = cfd;
  c->ufd = -1;
  c->state = C_ACCEPTED;
  for (int k = 0; k < 2; k++) c->d[k].pipe[0] = c->d[k].pipe[1] = -1;
  e->slots[idx] = c;
  return c;
}

/* ------------------------------------------------------------------------------------------ */
/* pipes for splice */

/* A pipe for direction d: from the pool, or a new one of RL_PIPE_SIZE. False: none to be had now
 * (RL_PIPES_MAX in use, EMFILE, the user's pipe quota): this read goes through recv. */
static bool pipe_take(rl_engine *e, rl_dir *d) {
  if (e->npipes > 0) {
    struct rl_pipe *p = &e->pipes[--e->npipes];
    d->pipe[0] = p->fd[0];
    d->pipe[1] = p->fd[1];
    d->pcap = p->size;
  } else {
    int p[2];
    if (e->pipes_used >= RL_PIPES_MAX || pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return false;
    d->pipe[0] = p[0];
    d->pipe[1] = p[1];
    e->st_pipes_made++;
    /* Bigger than the default 64 KiB: more bytes per splice call. Refused (pipe-max-size, the
     * user's quota): the default size serves. */
    fcntl(p[1], F_SETPIPE_SZ, RL_PIPE_SIZE);
    int sz = fcntl(p[1], F_GETPIPE_SZ);
    d->pcap = sz > 0 ? (uint32_t)sz : 65536;
  }
  e->pipes_used++;
  d->plen = 0;
  return true;
}

/* Gives direction d's pipe back: to the pool when empty, else closed (what it holds is dropped
 * with the connection). */
static void pipe_release(rl_engine *e, rl_dir *d) {
  if (d->pipe[0] < 0) return;
  if (d->plen == 0 && e->pipes && e->npipes + e->pipes_used <= RL_PIPES_MAX) {
    e->pipes[e->npipes++] = (struct rl_pipe){{d->pipe[0], d->pipe[1]}, d->pcap};
  } else {
    close(d->pipe[0]);
    close(d->pipe[1]);
  }
  e->pipes_used--;
  d->pipe[0] = d->pipe[1] = -1;
  d->plen = 0;
}

/* Closes both sides and forgets the connection; no event. */
static void conn_free(rl_engine *e, rl_conn *c) {
  list_unlink(e, c);
  pipe_release(e, &c->d[0]);
  pipe_release(e, &c->d[1]);
  if (c->cfd >= 0) close(c->cfd);
  if (c->ufd >= 0) close(c->ufd);
  free(c->d[0].buf);
  free(c->d[1].buf);
  uint32_t idx = c->id & RL_IDX_MASK;
  e->slots[idx] = NULL;
  e->free_idx[e->nfree++] = idx;
  free(c);
}

static void conn_end(rl_engine *e, rl_conn *c, int reason) {
  push_event(e, RL_E_CLOSED, c->id, c->bytes[0], c->bytes[1], reason);
  conn_free(e, c);
}

/* epoll registration of one side, once, edge-triggered for everything it can report: no
 * epoll_ctl per direction change (two syscalls per connection less than level-triggered masks).
 * Edge-triggered means readiness seen once: every path that stops reading or writing before
 * EAGAIN says how it gets back (pump: short read, RDHUP, rearm; flush_dir: pump after draining). */
#define RL_WATCH (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)
static int watch(rl_engine *e, rl_conn *c, int side) {
  int fd = side == 0 ? c->cfd : c->ufd;
  uint32_t *have = side == 0 ? &c->cmask : &c->umask;
  struct epoll_event ev = {.events = RL_WATCH, .data.u64 = ((uint64_t)side << 32) | c->id};
  int r = epoll_ctl(e->epfd, *have ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
  if (r == 0) *have = RL_WATCH;
  return r;
}

static void arm_timer(rl_engine *e);

/* ------------------------------------------------------------------------------------------ */
/* relaying */

static bool pump(rl_engine *e, rl_conn *c, int k, bool to_eagain);
static void on_idle(uv_idle_t *h) { (void)h; }

/* Direction k read its EOF and wrote everything. The FIN is passed on by shutdown(SHUT_WR) at the
 * end of the next loop turn's poll, not now: when the other side's FIN comes in meanwhile (a client
 * closing as soon as it has its answer, the usual Connection: close exchange) both sides are just
 * closed, and close() sends both FINs (nothing can be left unread: both EOFs were read) — one
 * shutdown syscall less, as HAProxy does. When the other way is finished already, close follows
 * at once and sends it. */
static void fin_due(rl_engine *e, rl_conn *c, int k) {
  rl_dir *d = &c->d[k];
  if (dir_done(&c->d[1 - k])) {
    d->shut = true;
    return;
  }
  if (e->nfins == e->cap_fins) {
    size_t cap = e->cap_fins ? e->cap_fins * 2 : 64;
    struct rl_fin *n = realloc(e->fins, cap * sizeof *n);
    if (!n) { /* no room to defer: send it now */
      shutdown(k == 0 ? c->ufd : c->cfd, SHUT_WR);
      d->shut = true;
      return;
    }
    e->fins = n;
    e->cap_fins = cap;
  }
  e->fins[e->nfins++] = (struct rl_fin){c->id, e->turn};
  d->fin_due = true;
  if (!e->idle_active && e->idle_initialized) {
    /* Keeps the loop's next poll from blocking: the FIN waits one turn, never for traffic. */
    uv_idle_start(&e->idle, on_idle);
    e->idle_active = true;
  }
}

/* End of a loop turn's poll phase: FINs queued in earlier turns go now. */
static void fins_flush(rl_engine *e, bool all) {
  size_t keep = 0;
  for (size_t i = 0; i < e->nfins; i++) {
    struct rl_fin f = e->fins[i];
    if (!all && f.turn >= e->turn) {
      e->fins[keep++] = f;
      continue;
    }
    rl_conn *c = conn_get(e, f.id);
    if (!c) continue; /* closed meanwhile (both FINs went with close) */
    for (int k = 0; k < 2; k++) {
      rl_dir *d = &c->d[k];
      if (!d->fin_due) continue;
      d->fin_due = false;
      d->shut = true;
      shutdown(k == 0 ? c->ufd : c->cfd, SHUT_WR);
    }
  }
  e->nfins = keep;
  if (e->nfins == 0 && e->idle_active) {
    uv_idle_stop(&e->idle);
    e->idle_active = false;
  }
}

static inline bool splice_unsupported(int err) { return err == EINVAL || err == ENOSYS || err == EOPNOTSUPP; }

/* Splicing cannot go on in direction k (splice refused, or no pipe to be had): recv/send from now
 * on. What the pipe holds moves into the buffer first (it is at most the pipe's size); false when
 * that fails (the connection must end: those bytes cannot be delivered). */
static bool splice_give_up(rl_engine *e, rl_dir *d) {
  d->splice = false;
  d->nosplice = true;
  e->st_splice_fallbacks++;
  if (d->pipe[0] < 0) return true;
  if (d->plen > 0) {
    /* The buffer is empty here (pending bytes are in one place at a time). */
    uint32_t cap = d->pcap > RL_BUF ? d->pcap : RL_BUF;
    char *b = realloc(d->buf, cap);
    if (!b) return false;
    d->buf = b;
    d->off = 0;
    d->len = 0;
    while (d->plen > 0) {
      ssize_t r = read(d->pipe[0], d->buf + d->len, d->plen);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      d->len += (uint32_t)r;
      d->plen -= (uint32_t)r;
    }
  }
  pipe_release(e, d);
  return true;
}

/* Writes what direction k's pipe holds: 1 = all of it (or it moved to the buffer: splice refused),
 * 0 = the destination is full (EPOLLOUT comes), -1 = the connection ended. */
static int pipe_flush(rl_engine *e, rl_conn *c, int k) {
  rl_dir *d = &c->d[k];
  int dst = k == 0 ? c->ufd : c->cfd;
  while (d->plen > 0) {
    ssize_t w = splice(d->pipe[0], NULL, dst, NULL, d->plen, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      if (errno == EINTR) continue;
      if (splice_unsupported(errno) && splice_give_up(e, d)) return 1;
      conn_end(e, c, RL_R_ERROR);
      return -1;
    }
    if (w == 0) { /* cannot happen with bytes in the pipe; never spin on it */
      conn_end(e, c, RL_R_ERROR);
      return -1;
    }
    if (k == 1) c->bytes[1] += (double)w;
    e->st_spliced += (double)w;
    d->plen -= (uint32_t)w;
  }
  /* Kept: the caller reads on (pump) and gives it back when it stops. */
  return 1;
}

/* Write what direction `k` has pending (pipe, buffer); true while the connection lives. Once
 * drained, its source is read again: edge-triggered, what arrived meanwhile raises no new event. */
static bool flush_dir(rl_engine *e, rl_conn *c, int k) {
  rl_dir *d = &c->d[k];
  int dst = k == 0 ? c->ufd : c->cfd;
  if (d->plen > 0) {
    int r = pipe_flush(e, c, k);
    if (r <= 0) return r == 0;
    pipe_release(e, d); /* empty: pump takes one again if it splices on */
  }
  while (d->len > 0) {
    ssize_t w = send(dst, d->buf + d->off, d->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true; /* EPOLLOUT comes when there is room */
      if (errno == EINTR) continue;
      conn_end(e, c, RL_R_ERROR);
      return false;
    }
    if (k == 1) c->bytes[1] += (double)w;
    d->off += (uint32_t)w;
    d->len -= (uint32_t)w;
  }
  d->off = 0;
  if (d->eof && !dir_done(d)) fin_due(e, c, k);
  if (!d->eof) return pump(e, c, k, true);
  return true;
}

/* Direction k's source sent FIN and everything before it went on: the FIN follows (fin_due), and
 * the first FIN of the connection is reported (it counts as inactive from then on). */
static void source_eof(rl_engine *e, rl_conn *c, int k) {
  c->d[k].eof = true;
  fin_due(e, c, k);
  if (!c->half_reported) {
    c->half_reported = true;
    push_event(e, RL_E_HALF_CLOSED, c->id, 0, 0, 0);
  }
}

/* Read from direction k's source and pass it on; true while the connection lives. A short read
 * drained the socket: later bytes or a later FIN raise a new edge. A FIN already queued when the
 * event was taken does not (the event says EPOLLRDHUP): then, and when the caller cannot tell
 * (`to_eagain`), read on until EAGAIN or EOF. */
static bool pump(rl_engine *e, rl_conn *c, int k, bool to_eagain) {
  rl_dir *d = &c->d[k];
  int src = k == 0 ? c->cfd : c->ufd;
  int dst = k == 0 ? c->ufd : c->cfd;
  for (int i = 0; pending(d) == 0 && !d->eof; i++) {
    if (i == RL_READS_PER_EVENT) {
      /* Enough for one turn (other connections wait): re-arming a readable edge-triggered
       * descriptor queues it again for the next epoll_wait. */
      if (watch(e, c, k) < 0) {
        conn_end(e, c, RL_R_ERROR);
        return false;
      }
      break;
    }
    if (d->splice) {
      /* socket -> pipe -> socket. The pipe is empty here, so EAGAIN means the source is drained;
       * a short splice does not (the pipe may have run out of slots): read on until EAGAIN. */
      if (d->pipe[0] >= 0 || pipe_take(e, d)) {
      ssize_t n = splice(src, NULL, d->pipe[1], NULL, d->pcap, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          pipe_release(e, d); /* empty: back to the pool until the next bytes */
          break;
        }
        if (errno == EINTR) continue;
        if (splice_unsupported(errno)) {
          splice_give_up(e, d); /* the pipe is empty: cannot fail */
          continue;
        }
        conn_end(e, c, RL_R_ERROR);
        return false;
      }
      if (n == 0) {
        pipe_release(e, d);
        source_eof(e, c, k);
        break;
      }
      if (k == 0) c->bytes[0] += (double)n;
      d->plen = (uint32_t)n;
      int r = pipe_flush(e, c, k);
      if (r < 0) return false;
      /* Splice refused on the way out: the bytes are in the buffer now, sent from there. */
      if (r == 1 && d->len > 0) return flush_dir(e, c, k);
      continue;
      }
      /* No pipe to be had just now: this read goes through the buffer. */
    }
    ssize_t n = recv(src, e->scratch, RL_BUF, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      conn_end(e, c, RL_R_ERROR);
      return false;
    }
    if (n == 0) {
      source_eof(e, c, k);
      break;
    }
    if (k == 0) c->bytes[0] += (double)n;
    ssize_t w = send(dst, e->scratch, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        conn_end(e, c, RL_R_ERROR);
        return false;
      }
      w = 0;
    }
    if (k == 1) c->bytes[1] += (double)w;
    if (w < n) {
      /* dst is full: the rest waits here, the source is not read until it went (flush_dir). */
      if (!d->buf && !(d->buf = malloc(RL_BUF))) {
        conn_end(e, c, RL_R_ERROR);
        return false;
      }
      d->off = 0;
      d->len = (uint32_t)(n - w);
      memcpy(d->buf, e->scratch + w, d->len);
      break;
    }
    /* A full buffer's worth at once, past the threshold: a stream. Splice from the next read on
     * (to_eagain then: a short splice does not mean drained). */
    if (n == RL_BUF && !d->nosplice && e->splice_after >= 0 && c->bytes[k] >= e->splice_after) {
      d->splice = true;
      continue;
    }
    if (n < RL_BUF && !to_eagain) break;
  }
  /* An empty pipe goes back to the pool (the read limit, a buffered remainder): it is taken again
   * for the next splice in. One with bytes in it stays: they are this direction's pending output. */
  if (d->pipe[0] >= 0 && d->plen == 0) pipe_release(e, d);
  return true;
}

static void relay_event(rl_engine *e, rl_conn *c, int side, uint32_t events) {
  /* side 0 = client fd, 1 = real-server fd. Writable: flush what is buffered for it. */
  int out_dir = side == 0 ? 1 : 0, in_dir = side;
  if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && pending(&c->d[out_dir]) > 0 && !flush_dir(e, c, out_dir)) return;
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) && !c->d[in_dir].eof && pending(&c->d[in_dir]) == 0) {
    if (!pump(e, c, in_dir, (events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP)) != 0)) return;
  }
  if (dir_done(&c->d[0]) && dir_done(&c->d[1])) {
    conn_end(e, c, RL_R_DONE);
    return;
  }
  c->active_ns = now_ns();
  list_append(e, c, c->half_reported ? L_FIN : L_OPEN);
}

/* err: 0 = connected (`events` from the real-server side's readiness), errno, or -1: timeout. */
static void connect_done(rl_engine *e, rl_conn *c, int err, uint32_t events) {
  if (err) {
    /* The client stays; JS tries another real server or destroys it. */
    close(c->ufd); /* also leaves the epoll set */
    c->ufd = -1;
    c->umask = 0;
    list_unlink(e, c);
    c->state = C_ACCEPTED;
    free(c->d[0].buf);
    c->d[0].buf = NULL;
    c->d[0].len = c->d[0].off = 0;
    push_event(e, RL_E_CONNECT_FAILED, c->id, err, 0, 0);
    return;
  }
  c->state = C_RELAY;
  push_event(e, RL_E_CONNECTED, c->id, 0, 0, 0);
  /* Now the client is read: registering it queues an event when it has sent something already. */
  if (watch(e, c, 0) < 0) {
    conn_end(e, c, RL_R_ERROR);
    return;
  }
  /* The header (PROXY protocol) goes first; bytes the real server sent already come over. */
  relay_event(e, c, 1, events | EPOLLOUT);
}

/* ------------------------------------------------------------------------------------------ */
/* delivery to JS */

static void deliver(rl_engine *e) {
  if (e->delivering) return; /* events raised by JS calls during a callback go out after it */
  e->delivering = true;
  napi_env env = e->env;
  while (e->nev > 0 && !e->closed) {
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) break;
    size_t nev = e->nev, naddrs = e->naddrs;
    napi_value ab, arr, addrs;
    void *data;
    bool ok = napi_create_arraybuffer(env, nev * sizeof(double), &data, &ab) == napi_ok &&
              napi_create_typedarray(env, napi_float64_array, nev, ab, 0, &arr) == napi_ok &&
              napi_create_array_with_length(env, naddrs, &addrs) == napi_ok;
    if (ok) memcpy(data, e->ev, nev * sizeof(double));
    for (size_t i = 0; ok && i < naddrs; i++) {
      napi_value s;
      ok = napi_create_string_latin1(env, e->addrs[i], NAPI_AUTO_LENGTH, &s) == napi_ok &&
           napi_set_element(env, addrs, (uint32_t)i, s) == napi_ok;
    }
    e->nev = 0;
    e->naddrs = 0;
    if (ok) {
      napi_value argv[2] = {arr, addrs};
      invoke_js_callback(env, e->callback, e->async_ctx, 2, argv);
    }
    napi_close_handle_scope(env, scope);
    if (!ok) break;
  }
  e->delivering = false;
  if (!e->closed) arm_timer(e);
}

/* ------------------------------------------------------------------------------------------ */
/* the loop side: epoll readiness and timeouts */

static void on_accept(rl_engine *e, uint32_t lid) {
  rl_listener *l = &e->listeners[lid];
  for (int i = 0; i < RL_ACCEPTS_PER_WAKE && l->fd >= 0; i++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        struct epoll_event ev = {0};
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, l->fd, &ev);
        l->watched = false;
        l->backoff_until = now_ns() + RL_ACCEPT_BACKOFF_NS;
        e->backoff = true;
      }
      return;
    }
    char text[INET6_ADDRSTRLEN];
    int port;
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *s = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &s->sin_addr, text, sizeof text);
      port = ntohs(s->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &s->sin6_addr, text, sizeof text);
      port = ntohs(s->sin6_port);
    } else {
      close(fd);
      continue;
    }
    if (e->naddrs == e->cap_addrs) {
      size_t cap = e->cap_addrs ? e->cap_addrs * 2 : 64;
      void *n = realloc(e->addrs, cap * sizeof *e->addrs);
      if (!n) {
        close(fd);
        return;
      }
      e->addrs = n;
      e->cap_addrs = cap;
    }
    rl_conn *c = conn_new(e, fd);
    if (!c) {
      close(fd);
      return;
    }
    memcpy(e->addrs[e->naddrs++], text, sizeof text);
    push_event(e, RL_E_ACCEPT, c->id, (double)((l->gen << 16) | lid), port, 0);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  rl_engine *e = h->data;
  struct epoll_event evs[RL_MAX_EVENTS];
  int n = epoll_wait(e->epfd, evs, RL_MAX_EVENTS, 0);
  for (int i = 0; i < n; i++) {
    uint32_t side = (uint32_t)(evs[i].data.u64 >> 32), id = (uint32_t)evs[i].data.u64;
    if (side == RL_SIDE_LISTENER) {
      if (id < e->nlisteners && e->listeners[id].fd >= 0) on_accept(e, id);
      continue;
    }
    /* A connection closed earlier in this batch has another generation (or none) by now. */
    rl_conn *c = conn_get(e, id);
    if (!c) continue;
    if (c->state == C_CONNECTING) {
      if (side != 1 || !(evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
      /* Writable without an error: connected (no getsockopt needed); else SO_ERROR says why. */
      int err = 0;
      if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
        socklen_t len = sizeof err;
        if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (!err) err = ECONNREFUSED;
      }
      connect_done(e, c, err, evs[i].events);
    } else if (c->state == C_RELAY) {
      relay_event(e, c, (int)side, evs[i].events);
    }
  }
  deliver(e);
}

static void expire(rl_engine *e) {
  uint64_t now = now_ns();
  rl_conn *c;
  while ((c = e->lists[L_CONNECTING].head) && c->deadline_ns <= now) connect_done(e, c, -1, 0);
  while ((c = e->lists[L_OPEN].head) && c->active_ns + e->idle_ns <= now) conn_end(e, c, RL_R_IDLE);
  while ((c = e->lists[L_FIN].head) && c->active_ns + e->fin_ns <= now) conn_end(e, c, RL_R_IDLE);
  if (e->backoff) {
    e->backoff = false;
    for (uint32_t i = 0; i < e->nlisteners; i++) {
      rl_listener *l = &e->listeners[i];
      if (l->fd < 0 || l->watched) continue;
      if (l->backoff_until > now) {
        e->backoff = true;
        continue;
      }
      struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((uint64_t)RL_SIDE_LISTENER << 32) | i};
      if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, l->fd, &ev) == 0) l->watched = true;
    }
  }
}

/* After every poll phase of the loop. */
static void on_check(uv_check_t *h) {
  rl_engine *e = h->data;
  if (e->nfins > 0) fins_flush(e, false);
  e->turn++;
}

static void on_timer(uv_timer_t *h) {
  rl_engine *e = h->data;
  e->timer_armed = false;
  expire(e);
  deliver(e); /* re-arms */
}

/* The timer goes off at the earliest deadline; activity only moves deadlines later, so an early
 * wake-up just re-arms. */
static void arm_timer(rl_engine *e) {
  uint64_t at = UINT64_MAX;
  rl_conn *c;
  if ((c = e->lists[L_CONNECTING].head)) at = c->deadline_ns;
  if ((c = e->lists[L_OPEN].head) && c->active_ns + e->idle_ns < at) at = c->active_ns + e->idle_ns;
  if ((c = e->lists[L_FIN].head) && c->active_ns + e->fin_ns < at) at = c->active_ns + e->fin_ns;
  if (e->backoff) {
    uint64_t b = now_ns() + RL_ACCEPT_BACKOFF_NS;
    if (b < at) at = b;
  }
  if (at == UINT64_MAX) return;
  if (e->timer_armed && e->timer_at <= at) return;
  uint64_t now = now_ns();
  uint64_t ms = at > now ? (at - now + 999999) / 1000000 : 0;
  uv_timer_start(&e->timer, on_timer, ms, 0);
  e->timer_armed = true;
  e->timer_at = at;
}

/* ------------------------------------------------------------------------------------------ */
/* life cycle */

static void close_all(rl_engine *e) {
  for (uint32_t i = 0; i < e->nslots; i++)
    if (e->slots[i]) conn_free(e, e->slots[i]);
  for (uint32_t i = 0; i < e->nlisteners; i++) {
    if (e->listeners[i].fd >= 0) close(e->listeners[i].fd);
    e->listeners[i].fd = -1;
  }
  e->nev = e->naddrs = e->nfins = 0;
}

static void engine_free_parts(rl_engine *e) {
  for (uint32_t i = 0; i < e->npipes; i++) close(e->pipes[i].fd[0]), close(e->pipes[i].fd[1]);
  free(e->pipes);
  e->pipes = NULL;
  e->npipes = 0;
  free(e->slots);
  free(e->gens);
  free(e->free_idx);
  free(e->listeners);
  free(e->ev);
  free(e->addrs);
  free(e->scratch);
  free(e->fins);
  e->fins = NULL;
  e->nfins = e->cap_fins = 0;
  e->slots = NULL, e->gens = NULL, e->free_idx = NULL, e->listeners = NULL, e->ev = NULL, e->addrs = NULL, e->scratch = NULL;
  e->nslots = e->nfree = e->nlisteners = 0;
}

static void engine_cleanup(void *arg) {
  rl_engine *e = arg;
  e->closed = true;
  close_all(e);
  if (e->poll_initialized) uv_poll_stop(&e->poll);
  if (e->timer_initialized) uv_timer_stop(&e->timer);
  if (e->check_initialized) uv_check_stop(&e->check);
  if (e->idle_initialized) uv_idle_stop(&e->idle);
  e->idle_active = false;
  if (e->epfd >= 0) close(e->epfd);
  e->epfd = -1;
  if (e->callback) napi_delete_reference(e->env, e->callback);
  if (e->async_ctx) napi_async_destroy(e->env, e->async_ctx);
  e->callback = NULL;
  e->async_ctx = NULL;
  engine_free_parts(e);
  /* The struct holds the two uv handles: it stays (a few hundred bytes per engine, one engine per
   * worker life). No close callback: in a worker thread the addon can be unloaded before the loop
   * runs the closing handles' callbacks, and a callback here would then jump into unmapped code. */
  if (e->poll_initialized) uv_close((uv_handle_t *)&e->poll, NULL);
  if (e->timer_initialized) uv_close((uv_handle_t *)&e->timer, NULL);
  if (e->check_initialized) uv_close((uv_handle_t *)&e->check, NULL);
  if (e->idle_initialized) uv_close((uv_handle_t *)&e->idle, NULL);
  if (!e->poll_initialized && !e->timer_initialized && !e->check_initialized && !e->idle_initialized) free(e);
}

/* ------------------------------------------------------------------------------------------ */
/* JS API */

bool sockaddr_from_text(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *len = sizeof *s4;
    return true;
  }
  if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    *len = sizeof *s6;
    return true;
  }
  return false;
}

static napi_value rl_throw_errno(napi_env env, const char *what, int err) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, uv_err_name(-err), msg);
  return NULL;
}

static napi_value rl_number(napi_env env, double v) {
  napi_value out;
  return napi_create_double(env, v, &out) == napi_ok ? out : NULL;
}

static napi_value rl_bool(napi_env env, bool v) {
  napi_value out;
  return napi_get_boolean(env, v, &out) == napi_ok ? out : NULL;
}

/* Arguments: argv[0] is the engine; the rest numbers unless said otherwise. */
static rl_engine *rl_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the first argument must come from relayEngine()");
    return NULL;
  }
  rl_engine *e = data;
  if (e->closed) {
    napi_throw_error(env, "E_CLOSED", "relay engine closed");
    return NULL;
  }
  return e;
}

static bool rl_num(napi_env env, napi_value v, double min, double max, const char *what, double *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_double(env, v, out) != napi_ok ||
      !(*out >= min && *out <= max)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
    return false;
  }
  return true;
}

static bool rl_out2(napi_env env, napi_value v, double **out) {
  napi_typedarray_type t;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, NULL, NULL) != napi_ok || t != napi_float64_array || len < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "out must be a Float64Array of 2");
    return false;
  }
  *out = data;
  return true;
}

static napi_value rl_engine_new(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype t;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }
  rl_engine *e = calloc(1, sizeof *e);
  if (!e) return rl_throw_errno(env, "relay engine", ENOMEM);
  e->env = env;
  e->epfd = -1;
  e->idle_ns = 900000ull * 1000000ull;
  e->fin_ns = 120000ull * 1000000ull;
  e->splice_after = RL_SPLICE_AFTER;
  if (!(e->scratch = malloc(RL_BUF)) || !(e->pipes = malloc(RL_PIPES_MAX * sizeof *e->pipes))) {
    free(e->scratch);
    free(e);
    return rl_throw_errno(env, "relay engine", ENOMEM);
  }
  struct uv_loop_s *loop = NULL;
  napi_value name;
  int err = 0;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok ||
      napi_create_string_utf8(env, "keepalive-ts:relay", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &e->async_ctx) != napi_ok ||
      napi_create_reference(env, argv[0], 1, &e->callback) != napi_ok) {
    err = EIO;
  }
  if (!err && (e->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) err = errno;
  if (!err) {
    int r = uv_poll_init(loop, &e->poll, e->epfd);
    if (r) err = -r;
    else {
      e->poll.data = e;
      e->poll_initialized = true;
      uv_unref((uv_handle_t *)&e->poll);
      r = uv_poll_start(&e->poll, UV_READABLE, on_poll);
      if (r) err = -r;
    }
  }
  if (!err) {
    int r = uv_timer_init(loop, &e->timer);
    if (r) err = -r;
    else {
      e->timer.data = e;
      e->timer_initialized = true;
      uv_unref((uv_handle_t *)&e->timer);
    }
  }
  if (!err) {
    int r = uv_check_init(loop, &e->check);
    if (r) err = -r;
    else {
      e->check.data = e;
      e->check_initialized = true;
      uv_unref((uv_handle_t *)&e->check);
      r = uv_check_start(&e->check, on_check);
      if (r) err = -r;
    }
  }
  if (!err) {
    int r = uv_idle_init(loop, &e->idle);
    if (r) err = -r;
    else {
      e->idle.data = e;
      e->idle_initialized = true;
      uv_unref((uv_handle_t *)&e->idle);
    }
  }
  /* From here on the cleanup hook owns everything, also on the error path. */
  napi_add_env_cleanup_hook(env, engine_cleanup, e);
  if (err) return rl_throw_errno(env, "relay engine", err);
  napi_value ext;
  if (napi_create_external(env, e, NULL, NULL, &ext) != napi_ok) return rl_throw_errno(env, "relay engine", EIO);
  return ext;
}

static napi_value rl_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  rl_engine *e = rl_args(env, info, 2, argv);
  double fdd;
  if (!e || !rl_num(env, argv[1], 0, 1 << 30, "fd", &fdd)) return NULL;
  int fd = (int)fdd;
  uint32_t i = 0;
  while (i < e->nlisteners && e->listeners[i].fd >= 0) i++;
  if (i == e->nlisteners) {
    if (i >= 0xffff) return rl_throw_errno(env, "relayListen", EMFILE);
    rl_listener *n = realloc(e->listeners, (i + 1) * sizeof *n);
    if (!n) return rl_throw_errno(env, "relayListen", ENOMEM);
    e->listeners = n;
    n[i].fd = -1;
    n[i].gen = 0;
    n[i].watched = false;
    e->nlisteners++;
  }
  rl_listener *l = &e->listeners[i];
  /* Accepted sockets inherit TCP_NODELAY from the listener (Linux): one setsockopt for all. */
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((uint64_t)RL_SIDE_LISTENER << 32) | i};
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    int err = errno;
    close(fd);
    return rl_throw_errno(env, "relayListen", err);
  }
  l->fd = fd;
  l->gen = (l->gen + 1) & 0x7fff;
  l->watched = true;
  l->backoff_until = 0;
  return rl_number(env, (double)((l->gen << 16) | i));
}

static napi_value rl_unlisten(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  rl_engine *e = rl_args(env, info, 2, argv);
  double lid;
  if (!e || !rl_num(env, argv[1], 0, 0x7fffffff, "listener", &lid)) return NULL;
  uint32_t i = (uint32_t)lid & 0xffff, gen = (uint32_t)lid >> 16;
  if (i < e->nlisteners && e->listeners[i].fd >= 0 && e->listeners[i].gen == gen) {
    close(e->listeners[i].fd); /* also leaves the epoll set */
    e->listeners[i].fd = -1;
  }
  return NULL;
}

static napi_value rl_connect(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  rl_engine *e = rl_args(env, info, 6, argv);
  double id, port, timeout;
  char addr[INET6_ADDRSTRLEN + 1];
  size_t alen = 0;
  if (!e || !rl_num(env, argv[1], 0, 4294967295.0, "conn", &id) || !rl_num(env, argv[3], 1, 65535, "port", &port) ||
      !rl_num(env, argv[4], 1, 86400000, "timeoutMs", &timeout))
    return NULL;
  if (napi_get_value_string_utf8(env, argv[2], addr, sizeof addr, &alen) != napi_ok || alen >= sizeof addr - 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "address must be an IP address string");
    return NULL;
  }
  rl_conn *c = conn_get(e, (uint32_t)id);
  if (!c || c->state != C_ACCEPTED) return rl_number(env, EBADF);
  struct sockaddr_storage ss;
  socklen_t sl;
  if (!sockaddr_from_text(addr, (int)port, &ss, &sl)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "address must be an IP address string");
    return NULL;
  }
  /* Bytes that go first (PROXY protocol header). */
  napi_valuetype t;
  if (napi_typeof(env, argv[5], &t) == napi_ok && t != napi_null && t != napi_undefined) {
    bool is_buf = false;
    void *data;
    size_t n;
    if (napi_is_buffer(env, argv[5], &is_buf) != napi_ok || !is_buf || napi_get_buffer_info(env, argv[5], &data, &n) != napi_ok || n > RL_BUF) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "head must be a Buffer of at most 64 KiB");
      return NULL;
    }
    if (n > 0) {
      if (!c->d[0].buf && !(c->d[0].buf = malloc(RL_BUF))) return rl_number(env, ENOMEM);
      memcpy(c->d[0].buf, data, n);
      c->d[0].off = 0;
      c->d[0].len = (uint32_t)n;
    }
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return rl_number(env, errno);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    return rl_number(env, err);
  }
  c->ufd = fd;
  c->umask = 0;
  c->state = C_CONNECTING;
  if (watch(e, c, 1) < 0) {
    int err = errno;
    close(fd);
    c->ufd = -1;
    c->state = C_ACCEPTED;
    return rl_number(env, err);
  }
  c->deadline_ns = now_ns() + (uint64_t)timeout * 1000000ull;
  list_insert_connecting(e, c);
  arm_timer(e);
  return rl_number(env, 0);
}

/* [in, out] bytes of a connection into out; with `destroy` the connection is closed too (no event). */
static napi_value conn_counts(napi_env env, napi_callback_info info, bool destroy) {
  napi_value argv[3];
  rl_engine *e = rl_args(env, info, 3, argv);
  double id, *out;
  if (!e || !rl_num(env, argv[1], 0, 4294967295.0, "conn", &id) || !rl_out2(env, argv[2], &out)) return NULL;
  rl_conn *c = conn_get(e, (uint32_t)id);
  if (!c) return rl_bool(env, false);
  out[0] = c->bytes[0];
  out[1] = c->bytes[1];
  if (destroy) conn_free(e, c);
  return rl_bool(env, true);
}

static napi_value rl_destroy(napi_env env, napi_callback_info info) { return conn_counts(env, info, true); }

static napi_value rl_bytes(napi_env env, napi_callback_info info) { return conn_counts(env, info, false); }

static napi_value rl_timeouts(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  rl_engine *e = rl_args(env, info, 3, argv);
  double idle, fin;
  if (!e || !rl_num(env, argv[1], 1, 1e12, "idleMs", &idle) || !rl_num(env, argv[2], 1, 1e12, "finMs", &fin)) return NULL;
  e->idle_ns = (uint64_t)idle * 1000000ull;
  e->fin_ns = (uint64_t)fin * 1000000ull;
  /* Shorter timeouts apply to open connections too: wake up now to look. */
  if (e->timer_armed) uv_timer_stop(&e->timer);
  e->timer_armed = false;
  arm_timer(e);
  return NULL;
}

static napi_value rl_splice(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  rl_engine *e = rl_args(env, info, 2, argv);
  double after;
  if (!e || !rl_num(env, argv[1], -1, 9007199254740991.0, "afterBytes", &after)) return NULL;
  e->splice_after = after < 0 ? -1 : after;
  return NULL;
}

static napi_value rl_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  rl_engine *e = rl_args(env, info, 2, argv);
  napi_typedarray_type t;
  size_t len;
  void *data;
  if (!e) return NULL;
  if (napi_get_typedarray_info(env, argv[1], &t, &len, &data, NULL, NULL) != napi_ok || t != napi_float64_array || len < 4) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "out must be a Float64Array of 4");
    return NULL;
  }
  double *out = data;
  out[0] = e->st_spliced;
  out[1] = e->st_pipes_made;
  out[2] = (double)e->pipes_used;
  out[3] = e->st_splice_fallbacks;
  return NULL;
}

static napi_value rl_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the first argument must come from relayEngine()");
    return NULL;
  }
  rl_engine *e = data;
  if (!e->closed) {
    close_all(e);
    if (e->timer_initialized) uv_timer_stop(&e->timer);
    e->timer_armed = false;
  }
  return NULL;
}

napi_value relay_engine_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"relayEngine", NULL, rl_engine_new, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayListen", NULL, rl_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayUnlisten", NULL, rl_unlisten, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayConnect", NULL, rl_connect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayDestroy", NULL, rl_destroy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayBytes", NULL, rl_bytes, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayTimeouts", NULL, rl_timeouts, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayClose", NULL, rl_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relaySplice", NULL, rl_splice, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayStats", NULL, rl_stats, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
