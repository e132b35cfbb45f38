/*
 * check_engine: the network I/O of TCP_CHECK and plain HTTP_GET attempts, on a thread of its own.
 *
 * Why: a health check is a connect, one small request and the first bytes of the answer. Done with
 * node:net / node:http, every attempt builds a Socket, a stream pair, an HTTP parser and a dozen
 * closures, and its syscalls run on the daemon's one event loop, the same loop that times the VRRP
 * adverts. Here an attempt is one malloc'ed struct driven by epoll on a dedicated thread; the event
 * loop only sees finished attempts, in batches (one uv_async wake-up per batch).
 *
 * One attempt: socket (+ bind when bind_to) -> non-blocking connect -> [request written -> answer
 * read: status line and headers; the body only when asked (digest / regex), de-chunked, at most
 * max_body bytes] -> close. The whole attempt is bounded by its timeout. The result is raw (errno,
 * status, body) and the TypeScript checker judges it.
 *
 * Jobs (the native schedule): a checker whose verdict needs no body (TCP_CHECK, HTTP_GET without
 * digest / regex) can hand its whole schedule to the engine: the first attempt after the warmup
 * delay, then each next one delay_loop (or delay_before_retry while retrying) after the previous
 * one ENDED, keepalived's retry semantics kept per job (the same steps as checkStep() in
 * src/lvs/health.ts, which stays authoritative for the state). A finished attempt of a job is
 * handed to JS only when it may change something there: the checker's state (unknown / up / down)
 * or retry count changed, or its outcome (code, status) differs from the last one reported. A
 * steady successful check (and a server that stays down for the same reason) costs the event loop
 * nothing; counters (attempts, failures, unknowns, last duration) are read by polling.
 *
 * JS API (registered by check_engine_init):
 *   checkEngineCallback(fn)  fn(ints: Int32Array, buffers: (Buffer|undefined)[]) receives batches:
 *                            CE_INTS int32 per finished attempt (see CE_R_*), buffers holds the
 *                            bodies / header blocks that were asked for.
 *   checkSpec(addr: Buffer(4|16), port, bindAddr: Buffer|null, request: Buffer|null, flags,
 *             maxBody, timeoutMs, bodyStatuses: Buffer|null) -> spec (an external; immutable,
 *                            shared by every attempt of a checker, freed when unreachable and idle)
 *                            flags: 1 HTTP (send request, read answer), 2 body, 4 header block;
 *                            bodyStatuses: bit map of the statuses whose body is wanted.
 *   checkStart(token, spec)  one attempt.
 *   checkAbort(token)        the attempt ends with CE_ABORTED (no-op when it already ended).
 *   checkJobStart(id, spec, okStatuses: Buffer|null, firstDelayMs, delayLoopMs, retryDelayMs,
 *                 retries) -> job (an external). okStatuses: bit map of the statuses that pass
 *                            (HTTP); null: code 0 passes. Reports come through the same callback
 *                            with CE_R_TOKEN = id and CE_R_JOB = 1 | state << 4 | retry << 8
 *                            (state: 0 unknown, 1 up, 2 down, after the attempt).
 *   checkJobStop(job)        no attempt starts any more, the one in flight is aborted, nothing
 *                            more is reported (idempotent).
 *   checkJobStats(job, out: Float64Array(5)) -> out = [attempts, failures, unknowns,
 *                            last duration us (-1: none), ms since the last attempt ended (-1)].
 * A finished attempt is always reported exactly once, including socket() errors (EMFILE...).
 *
 * The thread and the uv_async handle exist per Node environment (worker threads load the addon
 * again) and go away with it (environment cleanup hook: the thread is joined before the handle is
 * closed, so no wake-up can reach a closed handle).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "check_engine.h"
#include "napi_args.h"
#include "napi_callback.h"

/* Result codes besides 0 (success) and positive errno values. */
#define CE_TIMEOUT (-1)
#define CE_ABORTED (-2)
#define CE_CLOSED_EARLY (-3)  /* EOF before the status line and headers were complete */
#define CE_NOT_HTTP (-4)      /* the answer does not start with an HTTP/1.x status line */
#define CE_HEAD_TOO_BIG (-5)  /* header block over CE_MAX_HEAD */
#define CE_BAD_CHUNK (-6)     /* malformed chunked encoding */
#define CE_CLOSED_MID_BODY (-7)

/* flags */
#define CE_F_HTTP 1        /* a request is sent and an HTTP answer is read */
#define CE_F_BODY 2        /* read the body (de-chunked, up to max_body) */
#define CE_F_HEAD 4        /* hand back the raw header block */

/* Layout of one result in the Int32Array. */
#define CE_R_TOKEN 0
#define CE_R_CODE 1
#define CE_R_STATUS 2
#define CE_R_ELAPSED_US 3
#define CE_R_BODY 4 /* index in buffers, -1 when none */
#define CE_R_HEAD 5 /* index in buffers, -1 when none */
#define CE_R_TRUNCATED 6
#define CE_R_JOB 7 /* 0: a checkStart() attempt; else 1 | state << 4 | retry << 8 */
#define CE_INTS 8

enum { J_UNKNOWN = 0, J_UP = 1, J_DOWN = 2 };

#define CE_MAX_HEAD 16384
#define CE_INLINE 512
#define CE_MAX_EVENTS 256
/* Results handed to JS per callback: bounds the time one callback takes on the event loop. */
#define CE_MAX_BATCH 128
/* Finished attempts are handed over at most this long after the first of a batch finished: the
 * event loop wakes ~100 times a second for 1,000 checks a second instead of once per check. */
#define CE_DELIVER_NS 10000000ull
/* A job's attempt starts at the end of the slot of its due time (at most this much later): with
 * 1,000 checks a second the thread then wakes ~100 times a second to start them, not 1,000, and
 * the attempts of one slot connect, send and read in the same few epoll_wait() calls. */
#define CE_SLOT_NS 10000000ull

enum { S_CONNECTING = 1, S_SENDING, S_READING };
enum { B_NONE = 0, B_LENGTH, B_CHUNKED, B_CLOSE };
enum { C_SIZE = 0, C_EXT, C_SIZE_LF, C_DATA, C_DATA_CR, C_DATA_LF, C_TRAILER };

/* What every attempt of one checker does; immutable once made. */
typedef struct ce_spec {
  atomic_int refs; /* the JS external + each attempt in flight */
  int flags;
  size_t max_body;
  uint64_t timeout_ns;
  struct sockaddr_storage dst;
  socklen_t dstlen;
  struct sockaddr_storage src;
  socklen_t srclen; /* 0: no bind */
  char *req;
  size_t reqlen;
  int has_body_statuses;
  uint8_t body_statuses[128];
} ce_spec;

static void spec_unref(ce_spec *sp) {
  if (atomic_fetch_sub(&sp->refs, 1) == 1) {
    free(sp->req);
    free(sp);
  }
}

/* One checker's schedule (a job). Fields below "thread-only" are touched by the engine thread
 * only; the counters are read by JS (checkJobStats) without a lock. */
typedef struct ce_job {
  atomic_int refs; /* the JS external + the engine thread until the stop is processed */
  atomic_int stopped;
  uint32_t id;
  ce_spec *spec;
  int has_ok;
  uint8_t ok_statuses[128];
  uint64_t first_ns, loop_ns, retry_ns;
  int retries;
  struct ce_job *cmd_next, *stop_next; /* the start / stop queues */
  /* thread-only */
  int in_heap;
  int drop_when_popped; /* stopped while in the heap: its entry holds the thread's reference */
  uint64_t due_ns;
  struct ce_attempt *inflight;
  int state, retry_it;
  int reported, last_code, last_status;
  /* counters */
  atomic_uint runs, failures, unknowns;
  atomic_int last_us;
  atomic_ullong last_end_ns;
} ce_job;

static void job_unref(ce_job *j) {
  if (atomic_fetch_sub(&j->refs, 1) == 1) {
    spec_unref(j->spec);
    free(j);
  }
}

typedef struct ce_attempt {
  struct ce_attempt *prev, *next; /* deadline-ordered active list, or a queue */
  ce_spec *spec;
  ce_job *job; /* NULL for a checkStart() attempt */
  int job_word; /* CE_R_JOB of a job's report */
  uint32_t token;
  int fd;
  int state;
  int flags; /* the spec's, minus CE_F_BODY once the status says the body is not needed */
  uint64_t start_ns, deadline_ns;
  size_t reqoff;
  /* answer: raw bytes; the header block stays at the front, body bytes are decoded and dropped */
  char *buf;
  size_t len, cap;
  size_t head_end; /* offset just past the blank line, 0 until seen */
  size_t scan;     /* where the blank-line search resumes */
  int status;
  int framing;
  uint64_t remaining; /* B_LENGTH: body bytes still due */
  int cstate;
  uint64_t csize;
  int cdigits;
  char *body;
  size_t body_len, body_cap, max_body;
  int truncated;
  /* result */
  int code;
  uint32_t elapsed_us;
  char inline_buf[CE_INLINE];
} ce_attempt;

typedef struct {
  ce_attempt *head, *tail;
} ce_list;

typedef struct {
  uint64_t due;
  ce_job *job;
} ce_heap_entry;

typedef struct ce_engine {
  napi_env env;
  napi_ref callback;
  napi_async_context async_ctx;
  uv_async_t async;
  int async_initialized;
  /* Wakes the engine thread once per loop iteration (before the loop polls), however many
   * attempts were started or aborted in that iteration. */
  uv_prepare_t prepare;
  int prepare_initialized;
  int wake_pending;
  int handles_open; /* libuv handles not yet closed; the struct is freed after the last */
  int refed;
  uint32_t pending; /* started on the JS side and not yet delivered (JS thread only) */
  pthread_t thread;
  int thread_started;
  int epfd, evfd;
  pthread_mutex_t mu;
  ce_list submit; /* JS -> thread */
  uint32_t *aborts;
  size_t naborts, abort_cap;
  int stop;
  ce_list done; /* thread -> JS */
  ce_job *job_starts, *job_stops; /* JS -> thread */
  uint32_t jobs_live; /* started and not stopped (JS thread only) */
  /* thread-only */
  ce_list active;
  ce_heap_entry *heap; /* jobs by due time */
  size_t heap_n, heap_cap;
  uint64_t done_since; /* when the oldest undelivered result finished; 0: none */
  ce_attempt *spare; /* freed attempts of jobs, reused by the next ones (no malloc per check) */
  unsigned nspare;
} ce_engine;

/* ------------------------------------------------------------------------------------------ */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void list_push(ce_list *l, ce_attempt *a) {
  a->next = NULL;
  a->prev = l->tail;
  if (l->tail) l->tail->next = a;
  else l->head = a;
  l->tail = a;
}

static void list_unlink(ce_list *l, ce_attempt *a) {
  if (a->prev) a->prev->next = a->next;
  else l->head = a->next;
  if (a->next) a->next->prev = a->prev;
  else l->tail = a->prev;
  a->prev = a->next = NULL;
}

/* Inserted by deadline from the tail: attempts with the same timeout arrive in deadline order. */
static void list_insert_by_deadline(ce_list *l, ce_attempt *a) {
  ce_attempt *p = l->tail;
  while (p && p->deadline_ns > a->deadline_ns) p = p->prev;
  if (!p) {
    a->prev = NULL;
    a->next = l->head;
    if (l->head) l->head->prev = a;
    else l->tail = a;
    l->head = a;
    return;
  }
  a->prev = p;
  a->next = p->next;
  if (p->next) p->next->prev = a;
  else l->tail = a;
  p->next = a;
}

static void attempt_free(ce_attempt *a) {
  if (a->buf && a->buf != a->inline_buf) free(a->buf);
  free(a->body);
  spec_unref(a->spec);
  free(a);
}

/* `a` (fresh memory) becomes an attempt of `sp` (which it references), its deadline counted from
 * `start`. */
static ce_attempt *attempt_init(ce_attempt *a, ce_spec *sp, uint32_t token, uint64_t start) {
  /* Everything but the inline buffer starts zeroed. */
  memset(a, 0, offsetof(ce_attempt, inline_buf));
  atomic_fetch_add(&sp->refs, 1);
  a->spec = sp;
  a->fd = -1;
  a->token = token;
  a->flags = sp->flags;
  a->max_body = sp->max_body;
  a->buf = a->inline_buf;
  a->cap = CE_INLINE;
  a->start_ns = start;
  a->deadline_ns = start + sp->timeout_ns;
  return a;
}

/* A new attempt of `sp`, its deadline counted from now; NULL: no memory. */
static ce_attempt *attempt_new(ce_spec *sp, uint32_t token) {
  ce_attempt *a = malloc(sizeof *a);
  return a ? attempt_init(a, sp, token, now_ns()) : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Engine thread */

/* Spare attempts kept by the thread: a few slots' worth of checks. */
#define CE_SPARE_MAX 256

/* A job's attempt that is not handed to JS ends here: kept for the next attempt. */
static void attempt_recycle(ce_engine *e, ce_attempt *a) {
  if (e->nspare >= CE_SPARE_MAX) {
    attempt_free(a);
    return;
  }
  if (a->buf && a->buf != a->inline_buf) free(a->buf);
  free(a->body);
  spec_unref(a->spec);
  a->next = e->spare;
  e->spare = a;
  e->nspare++;
}

/* attempt_new() on the thread, from the spares when there is one. */
static ce_attempt *attempt_take(ce_engine *e, ce_spec *sp, uint32_t token, uint64_t now) {
  ce_attempt *a = e->spare;
  if (a) {
    e->spare = a->next;
    e->nspare--;
  } else if (!(a = malloc(sizeof *a))) return NULL;
  return attempt_init(a, sp, token, now);
}

/* A finished attempt goes to the JS side with the next delivery. */
static void hand_over(ce_engine *e, ce_attempt *a, uint64_t now) {
  pthread_mutex_lock(&e->mu);
  list_push(&e->done, a);
  pthread_mutex_unlock(&e->mu);
  if (!e->done_since) e->done_since = now;
}

/* The jobs' heap, ordered by due time. The due time is kept in the entry itself, so sifting reads
 * one contiguous array and never touches a job (a cache miss each). A stopped job is not taken
 * out: it is dropped when it comes to the top. */
static void heap_up(ce_engine *e, size_t i) {
  ce_heap_entry en = e->heap[i];
  while (i) {
    size_t p = (i - 1) / 2;
    if (e->heap[p].due <= en.due) break;
    e->heap[i] = e->heap[p];
    i = p;
  }
  e->heap[i] = en;
}

static void heap_down(ce_engine *e, size_t i) {
  ce_heap_entry en = e->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= e->heap_n) break;
    if (c + 1 < e->heap_n && e->heap[c + 1].due < e->heap[c].due) c++;
    if (e->heap[c].due >= en.due) break;
    e->heap[i] = e->heap[c];
    i = c;
  }
  e->heap[i] = en;
}

/* Room for every live job is reserved when it starts (heap_reserve), so this cannot fail. */
static void heap_push(ce_engine *e, ce_job *j) {
  j->in_heap = 1;
  e->heap[e->heap_n] = (ce_heap_entry){.due = j->due_ns, .job = j};
  heap_up(e, e->heap_n++);
}

static int heap_reserve(ce_engine *e, size_t n) {
  if (n <= e->heap_cap) return 0;
  size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
  while (cap < n) cap *= 2;
  ce_heap_entry *h = realloc(e->heap, cap * sizeof *h);
  if (!h) return -1;
  e->heap = h;
  e->heap_cap = cap;
  return 0;
}

static ce_job *heap_pop(ce_engine *e) {
  ce_job *j = e->heap[0].job;
  j->in_heap = 0;
  e->heap[0] = e->heap[--e->heap_n];
  if (e->heap_n) heap_down(e, 0);
  return j;
}

/* `t` rounded up to the end of its CE_SLOT_NS slot. */
static uint64_t slot_end(uint64_t t) {
  return (t + CE_SLOT_NS - 1) / CE_SLOT_NS * CE_SLOT_NS;
}

/* keepalived's retry steps for one finished attempt of a job (the same as checkStep() in
 * src/lvs/health.ts): returns the delay before the next attempt. `outcome`: 1 passed, 0 failed,
 * 2 unknown (this director ran out of descriptors: no verdict on the server). */
static uint64_t job_step(ce_job *j, int outcome) {
  if (outcome == 2) {
    j->state = J_UNKNOWN;
    atomic_fetch_add_explicit(&j->unknowns, 1, memory_order_relaxed);
    return j->loop_ns;
  }
  if (outcome == 1) {
    j->state = J_UP;
    j->retry_it = 0;
    return j->loop_ns;
  }
  atomic_fetch_add_explicit(&j->failures, 1, memory_order_relaxed);
  if (j->state != J_DOWN && j->retry_it < j->retries) {
    j->retry_it++;
    return j->retry_ns;
  }
  j->state = J_DOWN;
  j->retry_it = 0;
  return j->loop_ns;
}

/* A job's attempt ended: count it, step the state, schedule the next attempt from now, and hand
 * the result to JS only when something there may change. */
static void job_done(ce_engine *e, ce_attempt *a, uint64_t now) {
  ce_job *j = a->job;
  j->inflight = NULL;
  if (atomic_load(&j->stopped) || a->code == CE_ABORTED) {
    attempt_recycle(e, a);
    return;
  }
  int code = a->code, status = a->status;
  int outcome;
  if (code == EMFILE || code == ENFILE) outcome = 2; /* LOCAL_RESOURCE_ERRORS in src/lvs/check/types.ts */
  else if (code == 0 && (!j->has_ok || (status >= 0 && status < 1000 && (j->ok_statuses[status >> 3] & (1u << (status & 7))))))
    outcome = 1;
  else outcome = 0;
  int was_state = j->state, was_retry = j->retry_it;
  uint64_t next = job_step(j, outcome);
  if (next < 1000000ull) next = 1000000ull; /* never a busy loop, whatever the delays */
  atomic_fetch_add_explicit(&j->runs, 1, memory_order_relaxed);
  atomic_store_explicit(&j->last_us, (int)a->elapsed_us, memory_order_relaxed);
  atomic_store_explicit(&j->last_end_ns, now, memory_order_relaxed);
  j->due_ns = slot_end(now + next);
  heap_push(e, j);
  int report = !j->reported || j->state != was_state || j->retry_it != was_retry || code != j->last_code || status != j->last_status;
  if (!report) {
    attempt_recycle(e, a);
    return;
  }
  j->reported = 1;
  j->last_code = code;
  j->last_status = status;
  a->token = j->id;
  a->job_word = 1 | (j->state << 4) | (j->retry_it << 8);
  hand_over(e, a, now);
}


static void finish(ce_engine *e, ce_attempt *a, int code) {
  if (a->fd >= 0) {
    /* close() takes the fd out of the epoll set (it is never dup'ed). */
    close(a->fd);
    a->fd = -1;
  }
  list_unlink(&e->active, a);
  a->code = code;
  uint64_t now = now_ns();
  uint64_t el = (now - a->start_ns) / 1000;
  a->elapsed_us = el > INT32_MAX ? INT32_MAX : (uint32_t)el;
  if (a->job) {
    job_done(e, a, now);
    return;
  }
  hand_over(e, a, now);
}

/* Hands the finished attempts over once the oldest has waited CE_DELIVER_NS. */
static void deliver_due(ce_engine *e, uint64_t now) {
  if (e->done_since && now - e->done_since >= CE_DELIVER_NS) {
    e->done_since = 0;
    uv_async_send(&e->async);
  }
}

static int body_append(ce_attempt *a, const char *data, size_t n) {
  size_t room = a->max_body - a->body_len;
  if (n > room) {
    n = room;
    a->truncated = 1;
  }
  if (n == 0) return 0;
  if (a->body_len + n > a->body_cap) {
    size_t cap = a->body_cap ? a->body_cap : 1024;
    while (cap < a->body_len + n) cap *= 2;
    char *q = realloc(a->body, cap);
    if (!q) return -1;
    a->body = q;
    a->body_cap = cap;
  }
  memcpy(a->body + a->body_len, data, n);
  a->body_len += n;
  return 0;
}

/* Case-insensitive "name:" at the start of a header line; returns the value start or NULL. */
static const char *header_value(const char *line, const char *end, const char *name) {
  size_t n = strlen(name);
  if ((size_t)(end - line) <= n || strncasecmp(line, name, n) != 0 || line[n] != ':') return NULL;
  const char *v = line + n + 1;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  return v;
}

/* Parses the header block [0, head_end): status, and the body framing. Returns 0 or a CE_ code. */
static int parse_head(ce_attempt *a) {
  const char *p = a->buf, *end = a->buf + a->head_end;
  if (end - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') return CE_NOT_HTTP;
  int st = 0;
  for (int i = 9; i < 12; i++) {
    if (p[i] < '0' || p[i] > '9') return CE_NOT_HTTP;
    st = st * 10 + (p[i] - '0');
  }
  a->status = st;
  int64_t length = -1;
  int chunked = 0;
  const char *line = memchr(p, '\n', (size_t)(end - p));
  while (line && ++line < end) {
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol) break;
    const char *le = eol > line && eol[-1] == '\r' ? eol - 1 : eol;
    const char *v;
    if ((v = header_value(line, le, "content-length"))) {
      int64_t n = 0;
      int digits = 0;
      while (v < le && *v >= '0' && *v <= '9' && n < (INT64_MAX / 10 - 10)) {
        n = n * 10 + (*v++ - '0');
        digits++;
      }
      if (digits) length = n;
    } else if ((v = header_value(line, le, "transfer-encoding"))) {
      /* chunked must be the last coding; anything else is read to the close */
      for (const char *q = v; q + 7 <= le; q++)
        if (strncasecmp(q, "chunked", 7) == 0) chunked = 1;
    }
    line = eol;
  }
  if (st == 204 || st == 304 || (st >= 100 && st < 200)) a->framing = B_NONE;
  else if (chunked) a->framing = B_CHUNKED;
  else if (length >= 0) {
    a->framing = length == 0 ? B_NONE : B_LENGTH;
    a->remaining = (uint64_t)length;
  } else a->framing = B_CLOSE;
  return 0;
}

/* Decodes body bytes buf[head_end, len); drops what it consumed. Returns 1 when the body is
 * complete (or max_body reached), 0 when more is needed, <0 on error. */
static int decode_body(ce_attempt *a) {
  char *p = a->buf + a->head_end, *end = a->buf + a->len;
  int complete = 0;
  switch (a->framing) {
    case B_NONE:
      complete = 1;
      break;
    case B_CLOSE:
      if (body_append(a, p, (size_t)(end - p)) < 0) return -ENOMEM;
      p = end;
      break;
    case B_LENGTH: {
      size_t n = (size_t)(end - p);
      if (n > a->remaining) n = (size_t)a->remaining;
      if (body_append(a, p, n) < 0) return -ENOMEM;
      p += n;
      a->remaining -= n;
      if (a->remaining == 0) complete = 1;
      break;
    }
    case B_CHUNKED:
      while (p < end && !complete) {
        char c = *p;
        switch (a->cstate) {
          case C_SIZE: {
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d >= 0) {
              if (a->cdigits >= 15) return CE_BAD_CHUNK;
              a->csize = a->csize * 16 + (uint64_t)d;
              a->cdigits++;
              p++;
            } else if (a->cdigits == 0) {
              return CE_BAD_CHUNK;
            } else if (c == '\r') {
              a->cstate = C_SIZE_LF;
              p++;
            } else if (c == '\n') {
              a->cstate = a->csize ? C_DATA : C_TRAILER;
              if (!a->csize) complete = 1;
              p++;
            } else {
              a->cstate = C_EXT; /* ";ext" or spaces: skip to the end of the line */
              p++;
            }
            break;
          }
          case C_EXT:
            if (c == '\r') a->cstate = C_SIZE_LF;
            else if (c == '\n') {
              a->cstate = a->csize ? C_DATA : C_TRAILER;
              if (!a->csize) complete = 1;
            }
            p++;
            break;
          case C_SIZE_LF:
            if (c != '\n') return CE_BAD_CHUNK;
            p++;
            /* The last chunk: the body is complete, trailers are not read. */
            if (a->csize == 0) {
              a->cstate = C_TRAILER;
              complete = 1;
            } else a->cstate = C_DATA;
            break;
          case C_DATA: {
            size_t n = (size_t)(end - p);
            if (n > a->csize) n = (size_t)a->csize;
            if (body_append(a, p, n) < 0) return -ENOMEM;
            p += n;
            a->csize -= n;
            if (a->csize == 0) a->cstate = C_DATA_CR;
            break;
          }
          case C_DATA_CR:
            if (c == '\r') {
              a->cstate = C_DATA_LF;
              p++;
            } else if (c == '\n') {
              a->cstate = C_SIZE;
              a->cdigits = 0;
              p++;
            } else return CE_BAD_CHUNK;
            break;
          case C_DATA_LF:
            if (c != '\n') return CE_BAD_CHUNK;
            a->cstate = C_SIZE;
            a->cdigits = 0;
            p++;
            break;
          default:
            p = end;
            break;
        }
        if (a->truncated) break;
      }
      break;
  }
  /* drop the consumed bytes, keep the header block and any unparsed tail */
  size_t rest = (size_t)(end - p);
  if (rest) memmove(a->buf + a->head_end, p, rest);
  a->len = a->head_end + rest;
  return complete || a->truncated ? 1 : 0;
}

/* New bytes arrived (or EOF when eof): advance the parse. Returns 1 when finished (code set in
 * *code), 0 to keep reading. */
static int on_answer(ce_attempt *a, int eof, int *code) {
  while (!a->head_end) {
    size_t from = a->scan > 3 ? a->scan - 3 : 0;
    char *hit = NULL;
    for (char *q = a->buf + from; q + 1 < a->buf + a->len; q++) {
      if (q[0] == '\n' && q[1] == '\n') {
        hit = q + 2;
        break;
      }
      if (q + 3 < a->buf + a->len && q[0] == '\r' && q[1] == '\n' && q[2] == '\r' && q[3] == '\n') {
        hit = q + 4;
        break;
      }
    }
    a->scan = a->len;
    if (!hit) {
      /* Not even "HTTP/1." at the start: not worth waiting for more. */
      size_t n = a->len < 7 ? a->len : 7;
      if (memcmp(a->buf, "HTTP/1.", n) != 0) {
        *code = CE_NOT_HTTP;
        return 1;
      }
      if (a->len > CE_MAX_HEAD) {
        *code = CE_HEAD_TOO_BIG;
        return 1;
      }
      if (eof) {
        *code = CE_CLOSED_EARLY;
        return 1;
      }
      return 0;
    }
    a->head_end = (size_t)(hit - a->buf);
    int r = parse_head(a);
    if (r) {
      *code = r;
      return 1;
    }
    if (a->status >= 100 && a->status < 200 && a->status != 101) {
      /* An interim answer (100 Continue...): drop it and read the final one. */
      size_t rest = a->len - a->head_end;
      memmove(a->buf, a->buf + a->head_end, rest);
      a->len = rest;
      a->head_end = 0;
      a->scan = 0;
      a->status = 0;
      continue;
    }
  }
  if ((a->flags & CE_F_BODY) && a->spec->has_body_statuses &&
      (a->status >= 1000 || !(a->spec->body_statuses[a->status >> 3] & (1u << (a->status & 7)))))
    a->flags &= ~CE_F_BODY; /* a status the caller fails anyway: no need for the body */
  if (!(a->flags & CE_F_BODY)) {
    *code = 0;
    return 1;
  }
  int r = decode_body(a);
  if (r < 0) {
    *code = r == -ENOMEM ? ENOMEM : r;
    return 1;
  }
  if (r == 1) {
    *code = 0;
    return 1;
  }
  if (eof) {
    if (a->framing == B_CLOSE) {
      *code = 0;
      return 1;
    }
    *code = CE_CLOSED_MID_BODY;
    return 1;
  }
  return 0;
}

static void do_read(ce_engine *e, ce_attempt *a) {
  for (;;) {
    if (a->cap - a->len < 1024) {
      size_t want = a->cap * 2;
      if (want < a->len + 4096) want = a->len + 4096;
      char *q;
      if (a->buf == a->inline_buf) {
        q = malloc(want);
        if (q) memcpy(q, a->buf, a->len);
      } else q = realloc(a->buf, want);
      if (!q) {
        finish(e, a, ENOMEM);
        return;
      }
      a->buf = q;
      a->cap = want;
    }
    ssize_t n = recv(a->fd, a->buf + a->len, a->cap - a->len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      finish(e, a, errno);
      return;
    }
    a->len += (size_t)n;
    int code;
    if (on_answer(a, n == 0, &code)) {
      finish(e, a, code);
      return;
    }
    if (n == 0) return; /* unreachable: EOF always finishes */
  }
}

/* The socket is registered edge-triggered for both directions from the start, so moving from
 * sending to reading needs no epoll_ctl: the next EPOLLIN edge is the answer. `readable`: the
 * event being handled said there is something to read (or an EOF / error to see); without it,
 * no recv() right after the request (it would nearly always say EAGAIN: the answer comes later,
 * and its arrival is a new edge). */
static void do_send(ce_engine *e, ce_attempt *a, int readable) {
  const ce_spec *sp = a->spec;
  while (a->reqoff < sp->reqlen) {
    ssize_t n = send(a->fd, sp->req + a->reqoff, sp->reqlen - a->reqoff, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return; /* the next EPOLLOUT edge resumes */
      finish(e, a, errno);
      return;
    }
    a->reqoff += (size_t)n;
  }
  a->state = S_READING;
  /* The answer may already be queued (its edge came with the connect's): read what is there. */
  if (readable) do_read(e, a);
}

#define CE_READABLE (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)

static void on_connected(ce_engine *e, ce_attempt *a, uint32_t events) {
  if (!(a->flags & CE_F_HTTP)) {
    finish(e, a, 0);
    return;
  }
  a->state = S_SENDING;
  do_send(e, a, (events & CE_READABLE) != 0);
}

static void begin(ce_engine *e, ce_attempt *a) {
  const ce_spec *sp = a->spec;
  list_insert_by_deadline(&e->active, a);
  int fd = socket(sp->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    finish(e, a, errno);
    return;
  }
  a->fd = fd;
  if (sp->srclen) {
#ifdef IP_BIND_ADDRESS_NO_PORT
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    if (bind(fd, (struct sockaddr *)&sp->src, sp->srclen) < 0) {
      finish(e, a, errno);
      return;
    }
  }
  if (a->flags & CE_F_HTTP) {
    /* The handshake's last ACK then rides on the request instead of going out alone. */
    int zero = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
  }
  int r;
  do {
    r = connect(fd, (struct sockaddr *)&sp->dst, sp->dstlen);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EINPROGRESS) {
    finish(e, a, errno);
    return;
  }
  a->state = S_CONNECTING;
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = a};
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    finish(e, a, errno);
    return;
  }
  if (r == 0) on_connected(e, a, CE_READABLE); /* no event seen: look */
}

/* Starts the attempts of the jobs due by `now`. */
static void jobs_run_due(ce_engine *e, uint64_t now) {
  while (e->heap_n && e->heap[0].due <= now) {
    ce_job *j = heap_pop(e);
    if (atomic_load(&j->stopped)) {
      /* Its stop was taken already (then the reference is dropped here) or comes next. */
      if (j->drop_when_popped) job_unref(j);
      continue;
    }
    ce_attempt *a = attempt_take(e, j->spec, j->id, now);
    if (!a) {
      /* Out of memory: try again a delay_loop later rather than spin. */
      j->due_ns = now + j->loop_ns;
      heap_push(e, j);
      continue;
    }
    a->job = j;
    j->inflight = a;
    begin(e, a);
  }
}

/* New jobs go into the heap (due after their first delay); stopped ones leave it. */
static void jobs_take(ce_engine *e, ce_job *starts, ce_job *stops, uint64_t now) {
  for (ce_job *j = starts; j;) {
    ce_job *next = j->cmd_next;
    j->cmd_next = NULL;
    j->due_ns = slot_end(now + j->first_ns);
    if (heap_reserve(e, e->heap_n + 1) == 0) heap_push(e, j);
    /* else: out of memory; the job stays idle until it is stopped (its stats show no attempt). */
    j = next;
  }
  while (stops) {
    ce_job *j = stops;
    stops = j->stop_next;
    j->stop_next = NULL;
    if (j->inflight) finish(e, j->inflight, CE_ABORTED); /* job_done() does not reschedule it */
    if (j->in_heap) j->drop_when_popped = 1;
    else job_unref(j);
  }
}

static void on_event(ce_engine *e, ce_attempt *a, uint32_t events) {
  if (a->state == S_READING) {
    /* Data, EOF or an error: recv() returns the queued bytes first, then the error. */
    do_read(e, a);
    return;
  }
  if (events & EPOLLERR) {
    /* Refused, unreachable, reset: the socket's pending error says which. */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    finish(e, a, err ? err : (a->state == S_CONNECTING ? ECONNRESET : EPIPE));
    return;
  }
  if (a->state == S_CONNECTING) {
    if (!(events & EPOLLOUT)) {
      /* Hung up before the connection was up. */
      if (events & EPOLLHUP) finish(e, a, ECONNRESET);
      return;
    }
    on_connected(e, a, events);
    return;
  }
  if (a->state == S_SENDING) {
    if (events & EPOLLOUT) do_send(e, a, (events & CE_READABLE) != 0);
    else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) do_read(e, a); /* answered (or closed) before the request was out */
    return;
  }
  do_read(e, a);
}

static void *engine_main(void *arg) {
  ce_engine *e = arg;
  struct epoll_event evs[CE_MAX_EVENTS];
  for (;;) {
    /* Take the new attempts and aborts. */
    pthread_mutex_lock(&e->mu);
    ce_attempt *fresh = e->submit.head;
    e->submit.head = e->submit.tail = NULL;
    size_t naborts = e->naborts;
    uint32_t abort_buf[64];
    uint32_t *aborts = NULL;
    if (naborts) {
      aborts = naborts <= 64 ? abort_buf : malloc(naborts * sizeof *aborts);
      if (aborts) memcpy(aborts, e->aborts, naborts * sizeof *aborts);
      else naborts = 0;
      e->naborts = 0;
    }
    int stop = e->stop;
    ce_job *starts = e->job_starts, *stops = e->job_stops;
    e->job_starts = e->job_stops = NULL;
    pthread_mutex_unlock(&e->mu);
    if (stop) {
      /* The cleanup hook frees the jobs still queued; these two lists are the thread's now. */
      pthread_mutex_lock(&e->mu);
      e->job_starts = starts;
      pthread_mutex_unlock(&e->mu);
      (void)stops; /* a stop holds no reference of its own: the job is in the heap or in flight */
      break;
    }
    if (starts || stops) jobs_take(e, starts, stops, now_ns());
    while (fresh) {
      ce_attempt *next = fresh->next;
      fresh->prev = fresh->next = NULL;
      begin(e, fresh);
      fresh = next;
    }
    for (size_t i = 0; i < naborts; i++) {
      for (ce_attempt *a = e->active.head; a; a = a->next) {
        if (a->token == aborts[i] && !a->job) { /* a job's attempt carries its job id: another namespace */
          finish(e, a, CE_ABORTED);
          break;
        }
      }
    }
    if (aborts && aborts != abort_buf) free(aborts);
    /* Deadlines, and results due for delivery */
    uint64_t now = now_ns();
    while (e->active.head && e->active.head->deadline_ns <= now) finish(e, e->active.head, CE_TIMEOUT);
    jobs_run_due(e, now);
    deliver_due(e, now);
    uint64_t wake_at = UINT64_MAX;
    if (e->active.head) wake_at = e->active.head->deadline_ns;
    if (e->heap_n && e->heap[0].due < wake_at) wake_at = e->heap[0].due;
    if (e->done_since && e->done_since + CE_DELIVER_NS < wake_at) wake_at = e->done_since + CE_DELIVER_NS;
    int timeout = -1;
    if (wake_at != UINT64_MAX) {
      uint64_t d = wake_at > now ? wake_at - now : 0;
      timeout = (int)((d + 999999) / 1000000);
    }
    int n = epoll_wait(e->epfd, evs, CE_MAX_EVENTS, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) {
        uint64_t v;
        ssize_t r = read(e->evfd, &v, sizeof v);
        (void)r;
        continue;
      }
      /* epoll reports an fd at most once per call, and only the attempt an event belongs to can
       * finish while its event is handled, so this attempt is still ours (not yet handed over). */
      on_event(e, evs[i].data.ptr, evs[i].events);
    }
  }
  /* Stopping: close what is in flight; nothing is reported any more. The thread's references to
   * its jobs (in flight or in the heap) go. */
  while (e->active.head) {
    ce_attempt *a = e->active.head;
    list_unlink(&e->active, a);
    if (a->fd >= 0) close(a->fd);
    if (a->job) {
      a->job->inflight = NULL;
      job_unref(a->job);
    }
    attempt_free(a);
  }
  while (e->heap_n) job_unref(e->heap[--e->heap_n].job);
  while (e->spare) {
    ce_attempt *a = e->spare;
    e->spare = a->next;
    free(a);
  }
  e->nspare = 0;
  free(e->heap);
  e->heap = NULL;
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* JS thread */

/* The event loop is kept alive while attempts are in flight or jobs are scheduled. */
static void update_ref(ce_engine *e) {
  int want = e->pending > 0 || e->jobs_live > 0;
  if (want && !e->refed) uv_ref((uv_handle_t *)&e->async);
  else if (!want && e->refed) uv_unref((uv_handle_t *)&e->async);
  e->refed = want;
}

static void on_async(uv_async_t *h) {
  ce_engine *e = h->data;
  pthread_mutex_lock(&e->mu);
  ce_attempt *list = e->done.head;
  e->done.head = e->done.tail = NULL;
  pthread_mutex_unlock(&e->mu);
  napi_env env = e->env;
  while (list) {
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) break;
    size_t count = 0;
    for (ce_attempt *a = list; a && count < CE_MAX_BATCH; a = a->next) count++;
    napi_value ab, ints, bufs = NULL;
    int32_t *data = NULL;
    int ok = napi_create_arraybuffer(env, count * CE_INTS * sizeof(int32_t), (void **)&data, &ab) == napi_ok &&
             napi_create_typedarray(env, napi_int32_array, count * CE_INTS, ab, 0, &ints) == napi_ok;
    uint32_t nbufs = 0;
    for (size_t i = 0; ok && i < count; i++) {
      ce_attempt *a = list;
      list = a->next;
      int32_t *r = data + i * CE_INTS;
      r[CE_R_TOKEN] = (int32_t)a->token;
      r[CE_R_CODE] = a->code;
      r[CE_R_STATUS] = a->status;
      r[CE_R_ELAPSED_US] = (int32_t)a->elapsed_us;
      r[CE_R_BODY] = -1;
      r[CE_R_HEAD] = -1;
      r[CE_R_TRUNCATED] = a->truncated;
      r[CE_R_JOB] = a->job_word;
      if (a->code == 0 && (a->flags & (CE_F_BODY | CE_F_HEAD))) {
        if (!bufs && napi_create_array(env, &bufs) != napi_ok) ok = 0;
        napi_value b;
        void *copy;
        if (ok && (a->flags & CE_F_BODY) &&
            napi_create_buffer_copy(env, a->body_len, a->body_len ? a->body : "", &copy, &b) == napi_ok &&
            napi_set_element(env, bufs, nbufs, b) == napi_ok)
          r[CE_R_BODY] = (int32_t)nbufs++;
        if (ok && (a->flags & CE_F_HEAD) &&
            napi_create_buffer_copy(env, a->head_end, a->buf, &copy, &b) == napi_ok &&
            napi_set_element(env, bufs, nbufs, b) == napi_ok)
          r[CE_R_HEAD] = (int32_t)nbufs++;
      }
      if (!a->job_word && e->pending) e->pending--;
      attempt_free(a);
    }
    if (!bufs) napi_get_undefined(env, &bufs);
    if (ok) {
      napi_value argv[2] = {ints, bufs};
      invoke_js_callback(env, e->callback, e->async_ctx, 2, argv);
    }
    napi_close_handle_scope(env, scope);
    if (!ok) break;
  }
  /* Anything left (allocation failure above) is dropped rather than leaked. */
  while (list) {
    ce_attempt *a = list;
    list = a->next;
    if (!a->job_word && e->pending) e->pending--;
    attempt_free(a);
  }
  update_ref(e);
}

static void on_handle_closed(uv_handle_t *h) {
  ce_engine *e = h->data;
  if (--e->handles_open == 0) free(e);
}

static void wake_engine(ce_engine *e) {
  uint64_t one = 1;
  ssize_t w = write(e->evfd, &one, sizeof one);
  (void)w;
}

static void on_prepare(uv_prepare_t *h) {
  ce_engine *e = h->data;
  uv_prepare_stop(&e->prepare);
  e->wake_pending = 0;
  wake_engine(e);
}

/* New work for the engine thread: it is woken right before the event loop next polls. */
static void schedule_wake(ce_engine *e) {
  if (e->wake_pending) return;
  e->wake_pending = 1;
  if (e->prepare_initialized) uv_prepare_start(&e->prepare, on_prepare);
  else wake_engine(e);
}

static void engine_cleanup(void *arg) {
  ce_engine *e = arg;
  if (e->thread_started) {
    pthread_mutex_lock(&e->mu);
    e->stop = 1;
    pthread_mutex_unlock(&e->mu);
    wake_engine(e);
    pthread_join(e->thread, NULL);
  }
  while (e->submit.head) {
    ce_attempt *a = e->submit.head;
    list_unlink(&e->submit, a);
    attempt_free(a);
  }
  while (e->done.head) {
    ce_attempt *a = e->done.head;
    list_unlink(&e->done, a);
    attempt_free(a);
  }
  while (e->job_starts) {
    ce_job *j = e->job_starts;
    e->job_starts = j->cmd_next;
    job_unref(j);
  }
  free(e->aborts);
  if (e->epfd >= 0) close(e->epfd);
  if (e->evfd >= 0) close(e->evfd);
  if (e->callback) napi_delete_reference(e->env, e->callback);
  if (e->async_ctx) napi_async_destroy(e->env, e->async_ctx);
  pthread_mutex_destroy(&e->mu);
  e->handles_open = e->async_initialized + e->prepare_initialized;
  if (e->prepare_initialized) uv_close((uv_handle_t *)&e->prepare, on_handle_closed);
  if (e->async_initialized) uv_close((uv_handle_t *)&e->async, on_handle_closed);
  if (!e->handles_open) free(e);
}

static napi_value ce_throw(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static napi_value ce_throw_errno(napi_env env, const char *what, int err) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, uv_err_name(-err), msg);
  return NULL;
}

/* The per-environment engine, created (thread started) on first use. */
static ce_engine *engine_get(napi_env env) {
  void *data = NULL;
  if (napi_get_instance_data(env, &data) == napi_ok && data) return data;
  return NULL;
}

static ce_engine *engine_create(napi_env env) {
  ce_engine *e = calloc(1, sizeof *e);
  if (!e) {
    ce_throw(env, "ENOMEM", "check engine: out of memory");
    return NULL;
  }
  e->env = env;
  e->epfd = e->evfd = -1;
  pthread_mutex_init(&e->mu, NULL);
  struct uv_loop_s *loop = NULL;
  napi_value name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok ||
      napi_create_string_utf8(env, "keepalive-ts:check", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &e->async_ctx) != napi_ok) {
    pthread_mutex_destroy(&e->mu);
    free(e);
    ce_throw(env, "ERR_NAPI", "check engine: N-API setup failed");
    return NULL;
  }
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  e->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int err = e->epfd < 0 || e->evfd < 0 ? errno : 0;
  if (!err) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ev) < 0) err = errno;
  }
  if (!err) {
    int r = uv_async_init(loop, &e->async, on_async);
    if (r) err = -r;
    else {
      e->async.data = e;
      e->async_initialized = 1;
      uv_unref((uv_handle_t *)&e->async);
    }
  }
  if (!err) {
    int r = uv_prepare_init(loop, &e->prepare);
    if (r) err = -r;
    else {
      e->prepare.data = e;
      e->prepare_initialized = 1;
      uv_unref((uv_handle_t *)&e->prepare);
    }
  }
  if (!err) {
    err = pthread_create(&e->thread, NULL, engine_main, e);
    if (!err) {
      e->thread_started = 1;
      /* Named, so per-thread CPU (top -H, /proc/PID/task) shows what the checks cost. */
      pthread_setname_np(e->thread, "kt-checks");
    }
  }
  /* From here on the cleanup hook owns everything, also on the error path below. */
  napi_add_env_cleanup_hook(env, engine_cleanup, e);
  if (err || napi_set_instance_data(env, e, NULL, NULL) != napi_ok) {
    ce_throw_errno(env, "check engine", err ? err : EIO);
    return NULL;
  }
  return e;
}

static bool ce_addr(napi_env env, napi_value v, int port, struct sockaddr_storage *ss, socklen_t *len, const char *what) {
  void *data;
  size_t n;
  if (!napi_arg_buffer(env, v, what, &data, &n)) return false;
  if (n != 4 && n != 16) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return false;
  }
  memset(ss, 0, sizeof *ss);
  if (n == 4) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    memcpy(&s4->sin_addr, data, 4);
    *len = sizeof *s4;
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    memcpy(&s6->sin6_addr, data, 16);
    *len = sizeof *s6;
  }
  return true;
}

static bool ce_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_undefined || t == napi_null);
}

/* checkEngineCallback(fn) */
static napi_value ce_set_callback(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  napi_valuetype t;
  if (!napi_arg_count(env, info, 1, argv)) return NULL;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }
  ce_engine *e = engine_get(env);
  if (!e && !(e = engine_create(env))) return NULL;
  if (e->callback) napi_delete_reference(env, e->callback);
  e->callback = NULL;
  if (napi_create_reference(env, argv[0], 1, &e->callback) != napi_ok) return ce_throw(env, "ERR_NAPI", "reference");
  return NULL;
}

static void spec_finalize(napi_env env, void *data, void *hint) { spec_unref(data); }

/* checkSpec(addr, port, bindAddr, request, flags, maxBody, timeoutMs, bodyStatuses) -> external */
static napi_value ce_spec_new(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!napi_arg_count(env, info, 8, argv)) return NULL;
  int64_t port, flags, max_body, timeout_ms;
  if (!napi_arg_int(env, argv[1], 1, 65535, "port", &port) || !napi_arg_int(env, argv[4], 0, 7, "flags", &flags) ||
      !napi_arg_int(env, argv[5], 0, INT32_MAX, "maxBody", &max_body) || !napi_arg_int(env, argv[6], 1, INT32_MAX, "timeoutMs", &timeout_ms))
    return NULL;
  ce_spec *sp = calloc(1, sizeof *sp);
  if (!sp) return ce_throw(env, "ENOMEM", "check engine: out of memory");
  atomic_init(&sp->refs, 1);
  sp->flags = (int)flags;
  sp->max_body = (size_t)max_body;
  sp->timeout_ns = (uint64_t)timeout_ms * 1000000ull;
  const char *bad = NULL;
  if (!ce_addr(env, argv[0], (int)port, &sp->dst, &sp->dstlen, "addr must be a 4- or 16-byte Buffer")) goto fail;
  if (!ce_nullish(env, argv[2])) {
    if (!ce_addr(env, argv[2], 0, &sp->src, &sp->srclen, "bindAddr must be a 4- or 16-byte Buffer or null")) goto fail;
    if (sp->src.ss_family != sp->dst.ss_family) {
      bad = "bindAddr and addr families differ";
      goto fail;
    }
  }
  if (flags & CE_F_HTTP) {
    void *data;
    size_t n;
    if (!napi_arg_buffer(env, argv[3], "request must be a non-empty Buffer", &data, &n)) goto fail;
    if (n == 0) {
      bad = "request must be a non-empty Buffer";
      goto fail;
    }
    if (!(sp->req = malloc(n))) {
      spec_unref(sp);
      return ce_throw(env, "ENOMEM", "check engine: out of memory");
    }
    memcpy(sp->req, data, n);
    sp->reqlen = n;
  }
  if ((flags & CE_F_BODY) && !ce_nullish(env, argv[7])) {
    void *data;
    size_t n;
    if (!napi_arg_buffer(env, argv[7], "bodyStatuses must be a Buffer of at least 125 bytes or null", &data, &n)) goto fail;
    if (n < 125) {
      bad = "bodyStatuses must be a Buffer of at least 125 bytes or null";
      goto fail;
    }
    memcpy(sp->body_statuses, data, n < sizeof sp->body_statuses ? n : sizeof sp->body_statuses);
    sp->has_body_statuses = 1;
  }
  napi_value ext;
  if (napi_create_external(env, sp, spec_finalize, NULL, &ext) != napi_ok) {
    spec_unref(sp);
    return ce_throw(env, "ERR_NAPI", "external");
  }
  return ext;
fail:
  spec_unref(sp);
  if (bad) napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", bad);
  return NULL;
}

/* checkStart(token, spec) */
static napi_value ce_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t token;
  void *data = NULL;
  if (!napi_arg_count(env, info, 2, argv) || !napi_arg_int(env, argv[0], 0, UINT32_MAX, "token", &token) ||
      !napi_arg_external(env, argv[1], "spec must come from checkSpec()", &data))
    return NULL;
  ce_engine *e = engine_get(env);
  if (!e || !e->callback) return ce_throw(env, "ERR_INVALID_STATE", "checkEngineCallback() first");
  ce_attempt *a = attempt_new(data, (uint32_t)token);
  if (!a) return ce_throw(env, "ENOMEM", "check engine: out of memory");
  e->pending++;
  update_ref(e);
  pthread_mutex_lock(&e->mu);
  list_push(&e->submit, a);
  pthread_mutex_unlock(&e->mu);
  schedule_wake(e);
  return NULL;
}

/* checkAbort(token) */
static napi_value ce_abort(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t token;
  if (!napi_arg_count(env, info, 1, argv) || !napi_arg_int(env, argv[0], 0, UINT32_MAX, "token", &token)) return NULL;
  ce_engine *e = engine_get(env);
  if (!e) return NULL;
  pthread_mutex_lock(&e->mu);
  /* Not started yet: it ends here, reported like any other. */
  ce_attempt *queued = NULL;
  for (ce_attempt *a = e->submit.head; a; a = a->next)
    if (a->token == (uint32_t)token) queued = a;
  if (queued) {
    list_unlink(&e->submit, queued);
    queued->code = CE_ABORTED;
    int was_empty = e->done.head == NULL;
    list_push(&e->done, queued);
    pthread_mutex_unlock(&e->mu);
    if (was_empty) uv_async_send(&e->async);
    return NULL;
  }
  if (e->naborts == e->abort_cap) {
    size_t cap = e->abort_cap ? e->abort_cap * 2 : 16;
    uint32_t *p = realloc(e->aborts, cap * sizeof *p);
    if (!p) {
      pthread_mutex_unlock(&e->mu);
      return ce_throw(env, "ENOMEM", "check engine: out of memory");
    }
    e->aborts = p;
    e->abort_cap = cap;
  }
  e->aborts[e->naborts++] = (uint32_t)token;
  pthread_mutex_unlock(&e->mu);
  schedule_wake(e);
  return NULL;
}

static void job_finalize(napi_env env, void *data, void *hint) { job_unref(data); }

/* checkJobStart(id, spec, okStatuses, firstDelayMs, delayLoopMs, retryDelayMs, retries) -> job */
static napi_value ce_job_start(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!napi_arg_count(env, info, 7, argv)) return NULL;
  int64_t id, first, loop, retry, retries;
  void *data = NULL;
  if (!napi_arg_int(env, argv[0], 0, UINT32_MAX, "id", &id) || !napi_arg_int(env, argv[3], 0, INT32_MAX, "firstDelayMs", &first) ||
      !napi_arg_int(env, argv[4], 0, INT32_MAX, "delayLoopMs", &loop) || !napi_arg_int(env, argv[5], 0, INT32_MAX, "retryDelayMs", &retry) ||
      !napi_arg_int(env, argv[6], 0, 1000000, "retries", &retries) ||
      !napi_arg_external(env, argv[1], "spec must come from checkSpec()", &data))
    return NULL;
  ce_spec *sp = data;
  if (sp->flags & (CE_F_BODY | CE_F_HEAD)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "a job's spec reads no body and no header block");
    return NULL;
  }
  ce_engine *e = engine_get(env);
  if (!e || !e->callback) return ce_throw(env, "ERR_INVALID_STATE", "checkEngineCallback() first");
  ce_job *j = calloc(1, sizeof *j);
  if (!j) return ce_throw(env, "ENOMEM", "check engine: out of memory");
  if (!ce_nullish(env, argv[2])) {
    void *map;
    size_t n;
    const char *what = "okStatuses must be a Buffer of at least 125 bytes or null";
    if (!napi_arg_buffer(env, argv[2], what, &map, &n)) {
      free(j);
      return NULL;
    }
    if (n < 125) {
      free(j);
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
      return NULL;
    }
    memcpy(j->ok_statuses, map, n < sizeof j->ok_statuses ? n : sizeof j->ok_statuses);
    j->has_ok = 1;
  }
  atomic_init(&j->refs, 2); /* the external + the engine thread */
  atomic_init(&j->stopped, 0);
  atomic_init(&j->runs, 0);
  atomic_init(&j->failures, 0);
  atomic_init(&j->unknowns, 0);
  atomic_init(&j->last_us, -1);
  atomic_init(&j->last_end_ns, 0);
  atomic_fetch_add(&sp->refs, 1);
  j->spec = sp;
  j->id = (uint32_t)id;
  j->first_ns = (uint64_t)first * 1000000ull;
  j->loop_ns = (uint64_t)loop * 1000000ull;
  j->retry_ns = (uint64_t)retry * 1000000ull;
  j->retries = (int)retries;
  napi_value ext;
  if (napi_create_external(env, j, job_finalize, NULL, &ext) != napi_ok) {
    spec_unref(sp);
    free(j);
    return ce_throw(env, "ERR_NAPI", "external");
  }
  e->jobs_live++;
  update_ref(e);
  pthread_mutex_lock(&e->mu);
  j->cmd_next = e->job_starts;
  e->job_starts = j;
  pthread_mutex_unlock(&e->mu);
  schedule_wake(e);
  return ext;
}

/* The arguments of a call whose first argument is a job; NULL (with an exception) when it is not. */
static ce_job *job_call(napi_env env, napi_callback_info info, napi_value *argv, size_t n) {
  void *data = NULL;
  if (!napi_arg_count(env, info, n, argv) || !napi_arg_external(env, argv[0], "job must come from checkJobStart()", &data)) return NULL;
  return data;
}

/* checkJobStop(job) */
static napi_value ce_job_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ce_job *j = job_call(env, info, argv, 1);
  if (!j) return NULL;
  ce_engine *e = engine_get(env);
  if (!e || atomic_exchange(&j->stopped, 1)) return NULL;
  if (e->jobs_live) e->jobs_live--;
  update_ref(e);
  pthread_mutex_lock(&e->mu);
  j->stop_next = e->job_stops;
  e->job_stops = j;
  pthread_mutex_unlock(&e->mu);
  schedule_wake(e);
  return NULL;
}

/* checkJobStats(job, out: Float64Array(>= 5)) */
static napi_value ce_job_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  ce_job *j = job_call(env, info, argv, 2);
  if (!j) return NULL;
  bool is_ta = false;
  napi_typedarray_type type;
  size_t len = 0;
  void *out = NULL;
  if (napi_is_typedarray(env, argv[1], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[1], &type, &len, &out, NULL, NULL) != napi_ok || type != napi_float64_array || len < 5) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "out must be a Float64Array of at least 5");
    return NULL;
  }
  double *o = out;
  o[0] = (double)atomic_load_explicit(&j->runs, memory_order_relaxed);
  o[1] = (double)atomic_load_explicit(&j->failures, memory_order_relaxed);
  o[2] = (double)atomic_load_explicit(&j->unknowns, memory_order_relaxed);
  o[3] = (double)atomic_load_explicit(&j->last_us, memory_order_relaxed);
  uint64_t end = atomic_load_explicit(&j->last_end_ns, memory_order_relaxed);
  uint64_t now = now_ns();
  o[4] = end ? (double)(now > end ? now - end : 0) / 1e6 : -1;
  return NULL;
}

napi_value check_engine_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"checkEngineCallback", NULL, ce_set_callback, NULL, NULL, NULL, napi_enumerable, NULL},
      {"checkSpec", NULL, ce_spec_new, NULL, NULL, NULL, napi_enumerable, NULL},
      {"checkStart", NULL, ce_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"checkAbort", NULL, ce_abort, NULL, NULL, NULL, napi_enumerable, NULL},
      {"checkJobStart", NULL, ce_job_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"checkJobStop", NULL, ce_job_stop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"checkJobStats", NULL, ce_job_stats, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
