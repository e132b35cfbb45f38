/*
 * vrrp_sender: the VRRP timing executor. A thread of its own sends prebuilt IPv4 VRRP adverts on an
 * absolute CLOCK_MONOTONIC schedule, so neither a MASTER's periodic adverts nor a BACKUP's first
 * advert at takeover wait for Node's event loop (GC, health-check callbacks, control socket...).
 *
 * It decides nothing: the pure state machine (src/vrrp/state.ts) says what its next timer expiry
 * will do (timerPlan), the shell (src/vrrp/instance.ts) hands the resulting job over, with the frames
 * the hub built, and replaces or cancels it whenever the machine's output changes. Two kinds of job:
 *
 *  - PERIODIC (a MASTER): send the frames at `first`, then every `period` after it (absolute
 *    schedule: next = previous deadline + period, so lateness does not accumulate). Nothing is
 *    reported to JS; `stats` gives the count.
 *  - TAKEOVER (a BACKUP's down timer): at the deadline send the frames (the MASTER's first advert)
 *    and report the send to JS, which then runs the transition (the state machine, VIPs, GARP)
 *    and skips the advert already sent. It does NOT send when any VRRP packet of that VRID reached
 *    the interface since JS armed the job: JS may not have processed it yet (it could be a live
 *    master's advert that refreshes the timer), so the decision goes back to JS, which handles it
 *    exactly as without this thread (keepalived likewise lets a pending read win over the timer).
 *    For that check the thread reads its own raw socket of protocol 112 per interface (a copy of
 *    every VRRP packet the interface delivers; IP_MULTICAST_ALL lets it see the groups the JS
 *    socket joined), noting per VRID when the last one arrived.
 *
 * JS API (registered by vrrp_sender_init):
 *   vrrpSenderOpen(callback) -> handle           callback(id, gen, ageMs, vipsAgeMs, garps, vipsErrno) on
 *                                                the loop after a takeover job ran: ageMs = how long ago
 *                                                its advert left, -1 = not sent (a packet arrived
 *                                                meanwhile, or send failed); vipsAgeMs = how long ago its
 *                                                extras' VIPs were all in (-1: none added; vipsErrno: the
 *                                                first refusal), garps = GARP frames sent after them
 *   vrrpSenderSchedule(handle, id, gen, kind, fd, ifindex, vrid, packets[], dsts[], delayMs, periodMs, keepPhase[, extras])
 *                                                kind 1 periodic, 2 takeover; replaces job `id`. fd is
 *                                                dup()ed (the caller may close its own). keepPhase: a
 *                                                periodic job of the same period keeps its next deadline
 *                                                (new frames only: a priority or address change).
 *                                                extras (takeover): { nl, nlCount, garpIfindex, garps[] }
 *                                                done right after the advert, only if it left: the
 *                                                RTM_NEWADDR requests `nl` on the thread's own rtnetlink
 *                                                socket, then (every VIP acknowledged) the GARP frames
 *   vrrpSenderCancel(handle, id)
 *   vrrpSenderStats(handle, id) -> [sent, errors, maxLateUs, maxWakeLateUs]   (sends of job id; how late
 *                                                the latest one left, and of that how late the thread woke)
 *   vrrpSenderHeard(handle, ifindex, vrid) -> ms since a packet of the VRID last reached the interface
 *                                                (-1: unknown): the receive time of an advert the loop
 *                                                reads late (a BACKUP's down timer counts from it)
 *   vrrpSenderSetRealtime(handle, priority, rlimitUs) -> errno (0: done)
 *                                                priority 1..99: the thread (only it, not the process)
 *                                                runs SCHED_RR at that priority, so a busy CPU does not
 *                                                delay its wake-up at a deadline; 0: back to SCHED_OTHER.
 *                                                rlimitUs > 0 with a priority: RLIMIT_RTTIME soft
 *                                                rlimitUs / 2, hard rlimitUs (keepalived's
 *                                                vrrp_rt_priority / vrrp_rlimit_rttime). The limit is
 *                                                the process's, but only real-time threads accrue it.
 *   vrrpSenderClose(handle)                      stops the thread; idempotent
 */
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>

#include "napi_args.h"
#include "vrrp_sender.h"

#define VS_MAX_DST 16
#define VS_MAX_RX 64
#define VS_BATCH 256
#define VRRP_PROTO 112
#define VS_MAX_GARP 64

enum { KIND_PERIODIC = 1, KIND_TAKEOVER = 2 };

typedef struct {
  uint8_t *buf;
  size_t len;
  struct sockaddr_in dst;
} vs_packet;

/* A takeover's own work right after its advert (IPv4 instances whose VIPs need nothing first):
 * prebuilt rtnetlink RTM_NEWADDR requests for the VIPs, then the gratuitous ARP frames, sent only
 * once every VIP is in (a GARP for an address we do not have would be a lie). */
typedef struct {
  uint8_t *nl;
  size_t nl_len;
  int nl_count;
  int garp_ifindex;
  int ngarp;
  uint8_t *garp[VS_MAX_GARP];
  size_t garp_len[VS_MAX_GARP];
} vs_extras;

typedef struct {
  uint32_t id;
  uint32_t gen;
  int kind;
  vs_extras ex;
  bool active;
  int fd;
  int ifindex;
  int vrid;
  uint64_t next_ns;
  uint64_t period_ns;
  uint64_t armed_ns;
  int npkt;
  vs_packet pkt[VS_MAX_DST];
  double sent, errors, max_late_ns;
  /* Of that, how late the thread woke (the rest: waiting for the lock, sending earlier jobs). */
  double max_wake_late_ns;
} vs_job;

typedef struct {
  int ifindex;
  int fd;
  uint64_t last_rx[256];
} vs_rx;

/* An AF_PACKET socket per interface the GARPs of a takeover leave through (send only). */
typedef struct {
  int ifindex;
  int fd;
} vs_pk;

typedef struct {
  pthread_mutex_t mu;
  pthread_t thread;
  bool thread_started;
  bool stop;
  bool closed;
  int evfd;
  /* The next deadline. A timerfd, not ppoll's timeout: the kernel gives poll timeouts a slack of
   * 0.1 % of their length (3.6 ms on a 3.6 s down timer); a timerfd fires at its deadline. */
  int tfd;
  vs_job **jobs;
  size_t njobs, cap;
  vs_rx rx[VS_MAX_RX];
  int nrx;
  vs_pk pk[VS_MAX_RX];
  int npk;
  /* The thread's own rtnetlink socket for the VIPs of a takeover (-1: none opened yet). */
  int nlfd;
  napi_threadsafe_function tsfn;
  /* When the thread last returned from ppoll. */
  uint64_t woke_ns;
} vs_sender;

typedef struct {
  uint32_t id, gen;
  uint64_t sent_ns; /* 0: not sent */
  uint64_t vips_ns; /* when the kernel acknowledged every VIP of the takeover (0: none added here) */
  int vips_err;     /* errno of the first VIP the kernel refused (0: none) */
  int garps;        /* gratuitous ARP frames sent after them */
} vs_report;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void extras_free(vs_extras *x) {
  free(x->nl);
  for (int i = 0; i < x->ngarp; i++) free(x->garp[i]);
  memset(x, 0, sizeof *x);
}

static void job_free_frames(vs_job *j) {
  for (int i = 0; i < j->npkt; i++) free(j->pkt[i].buf);
  j->npkt = 0;
  extras_free(&j->ex);
  if (j->fd >= 0) close(j->fd);
  j->fd = -1;
}

static vs_job *find_job(vs_sender *s, uint32_t id) {
  for (size_t i = 0; i < s->njobs; i++)
    if (s->jobs[i]->id == id) return s->jobs[i];
  return NULL;
}

static vs_rx *find_rx(vs_sender *s, int ifindex) {
  for (int i = 0; i < s->nrx; i++)
    if (s->rx[i].ifindex == ifindex) return &s->rx[i];
  return NULL;
}

static void wake(vs_sender *s) {
  uint64_t one = 1;
  ssize_t r = write(s->evfd, &one, sizeof one);
  (void)r;
}

/* Reads every pending packet of the interface's rx socket and notes when each VRID was last heard. */
static void drain_rx(vs_rx *r) {
  uint8_t buf[1600];
  for (;;) {
    ssize_t n = recv(r->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) return;
    if (n < 20) continue;
    size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
    if ((size_t)n < ihl + 2) continue;
    r->last_rx[buf[ihl + 1]] = now_ns();
  }
}

static vs_pk *find_pk(vs_sender *s, int ifindex) {
  for (int i = 0; i < s->npk; i++)
    if (s->pk[i].ifindex == ifindex) return &s->pk[i];
  return NULL;
}

/* Sends the prebuilt RTM_NEWADDR requests (one datagram: the kernel applies them in order, under the
 * rtnl lock, before send returns) and reads their acks. 0 when every VIP is there (EEXIST counts:
 * already there), else the first errno. */
static int apply_vips(int nlfd, const vs_extras *x) {
  uint8_t buf[8192];
  while (recv(nlfd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  } /* anything left from an earlier takeover */
  if (send(nlfd, x->nl, x->nl_len, 0) != (ssize_t)x->nl_len) return errno ? errno : EIO;
  int acks = 0, first = 0;
  while (acks < x->nl_count) {
    ssize_t n = recv(nlfd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return first ? first : (errno == EAGAIN ? ETIMEDOUT : errno);
    }
    int len = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      acks++;
      int e = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
      if (e && e != EEXIST && !first) first = e;
    }
  }
  return first;
}

/* The takeover's advert is out: its VIPs, then its gratuitous ARPs (keepalived's order). Runs without
 * the lock (the kernel's rtnl lock may be contended: other instances' adverts must not wait for it):
 * `x` belongs to the caller, the sockets live until the thread stops. */
static void takeover_extras(int nlfd, int pkfd, const vs_extras *x, vs_report *rep) {
  rep->vips_err = apply_vips(nlfd, x);
  if (rep->vips_err) return;
  rep->vips_ns = now_ns();
  if (pkfd < 0) return;
  struct sockaddr_ll ll;
  memset(&ll, 0, sizeof ll);
  ll.sll_family = AF_PACKET;
  ll.sll_ifindex = x->garp_ifindex;
  ll.sll_halen = 6;
  struct mmsghdr msgs[VS_MAX_GARP];
  struct iovec iov[VS_MAX_GARP];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < x->ngarp; i++) {
    iov[i].iov_base = x->garp[i];
    iov[i].iov_len = x->garp_len[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &ll;
    msgs[i].msg_hdr.msg_namelen = sizeof ll;
  }
  int done = 0;
  while (done < x->ngarp) {
    int r = sendmmsg(pkfd, msgs + done, (unsigned)(x->ngarp - done), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break; /* JS's announcer sends what did not leave */
    done += r;
  }
  rep->garps = done;
}

/* Reports a takeover job to JS; if its advert left, its extras run first (the lock is held on entry
 * and on return, released meanwhile: the job's extras are taken out of it beforehand, so a
 * vrrpSenderSchedule/Cancel of the job meanwhile does not free them under the thread). */
static void report(vs_sender *s, vs_job *j, uint64_t sent_ns) {
  vs_report *rep = calloc(1, sizeof *rep);
  vs_extras x = j->ex;
  memset(&j->ex, 0, sizeof j->ex);
  if (!rep) {
    extras_free(&x);
    return;
  }
  rep->id = j->id;
  rep->gen = j->gen;
  rep->sent_ns = sent_ns;
  if (sent_ns && x.nl_len && s->nlfd >= 0) {
    vs_pk *pk = x.ngarp ? find_pk(s, x.garp_ifindex) : NULL;
    int nlfd = s->nlfd, pkfd = pk ? pk->fd : -1;
    pthread_mutex_unlock(&s->mu);
    takeover_extras(nlfd, pkfd, &x, rep);
    pthread_mutex_lock(&s->mu);
  }
  extras_free(&x);
  if (napi_call_threadsafe_function(s->tsfn, rep, napi_tsfn_nonblocking) != napi_ok) free(rep);
}

/* Sends the job's frames; true when every one left. */
static bool send_job(vs_job *j) {
  struct mmsghdr msgs[VS_MAX_DST];
  struct iovec iov[VS_MAX_DST];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < j->npkt; i++) {
    iov[i].iov_base = j->pkt[i].buf;
    iov[i].iov_len = j->pkt[i].len;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &j->pkt[i].dst;
    msgs[i].msg_hdr.msg_namelen = sizeof j->pkt[i].dst;
  }
  int done = 0;
  while (done < j->npkt) {
    int r = sendmmsg(j->fd, msgs + done, (unsigned)(j->npkt - done), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += r;
  }
  return true;
}

/* Periodic adverts due together, sent with one sendmmsg (jobs of one interface share its socket). */
typedef struct {
  struct mmsghdr msg[VS_BATCH];
  struct iovec iov[VS_BATCH];
  vs_job *job[VS_BATCH];
  int n;
  int fd;
  int ifindex;
} vs_batch;

static void flush(vs_batch *b) {
  int done = 0;
  while (done < b->n) {
    int r = sendmmsg(b->fd, b->msg + done, (unsigned)(b->n - done), 0);
    if (r > 0) {
      done += r;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      b->job[done]->errors++; /* this datagram failed (ENOBUFS, link down...); the rest still go */
      done++;
    }
  }
  b->n = 0;
}

static void batch_add(vs_batch *b, vs_job *j) {
  if (b->n > 0 && (b->ifindex != j->ifindex || b->n + j->npkt > VS_BATCH)) flush(b);
  if (b->n == 0) {
    b->fd = j->fd;
    b->ifindex = j->ifindex;
  }
  for (int i = 0; i < j->npkt; i++) {
    int k = b->n++;
    memset(&b->msg[k], 0, sizeof b->msg[k]);
    b->iov[k].iov_base = j->pkt[i].buf;
    b->iov[k].iov_len = j->pkt[i].len;
    b->msg[k].msg_hdr.msg_iov = &b->iov[k];
    b->msg[k].msg_hdr.msg_iovlen = 1;
    b->msg[k].msg_hdr.msg_name = &j->pkt[i].dst;
    b->msg[k].msg_hdr.msg_namelen = sizeof j->pkt[i].dst;
    b->job[k] = j;
  }
}

/* The due job of the earliest deadline. Taking them in deadline order makes a burst of instances
 * due together leave in the same order every period, so each one's interval stays the period
 * (in array order, which jobs made one wake-up or the next varied from period to period). */
static vs_job *next_due(vs_sender *s, uint64_t now) {
  vs_job *best = NULL;
  for (size_t i = 0; i < s->njobs; i++) {
    vs_job *j = s->jobs[i];
    if (j->active && j->next_ns <= now && (!best || j->next_ns < best->next_ns)) best = j;
  }
  return best;
}

static void run_due(vs_sender *s) {
  static vs_batch b; /* only this thread uses it */
  for (int i = 0; i < s->nrx; i++) drain_rx(&s->rx[i]);
  b.n = 0;
  for (;;) {
    uint64_t now = now_ns();
    vs_job *j = next_due(s, now);
    if (!j) break;
    uint64_t late = now - j->next_ns;
    if ((double)late > j->max_late_ns) j->max_late_ns = (double)late;
    if (s->woke_ns > j->next_ns && (double)(s->woke_ns - j->next_ns) > j->max_wake_late_ns) j->max_wake_late_ns = (double)(s->woke_ns - j->next_ns);
    if (j->kind == KIND_TAKEOVER) {
      flush(&b);
      j->active = false;
      vs_rx *r = find_rx(s, j->ifindex);
      bool heard = !r || r->last_rx[j->vrid & 0xff] > j->armed_ns;
      bool ok = !heard && send_job(j);
      uint64_t sent_at = ok ? now_ns() : 0;
      if (ok) j->sent++;
      else if (!heard) j->errors++;
      report(s, j, sent_at);
      continue;
    }
    batch_add(&b, j);
    j->sent++;
    j->next_ns += j->period_ns;
    /* Far behind (the machine was suspended): resume from now rather than bursting. */
    if (j->next_ns <= now) j->next_ns = now + j->period_ns;
  }
  flush(&b);
}

static void *sender_main(void *arg) {
  vs_sender *s = arg;
  struct pollfd pfd[2 + VS_MAX_RX];
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < s->njobs; i++)
      if (s->jobs[i]->active && s->jobs[i]->next_ns < next) next = s->jobs[i]->next_ns;
    int n = 0;
    pfd[n++] = (struct pollfd){.fd = s->evfd, .events = POLLIN};
    pfd[n++] = (struct pollfd){.fd = s->tfd, .events = POLLIN};
    for (int i = 0; i < s->nrx; i++) pfd[n++] = (struct pollfd){.fd = s->rx[i].fd, .events = POLLIN};
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (next != UINT64_MAX) {
      if (next == 0) next = 1; /* 0 would disarm */
      its.it_value.tv_sec = (time_t)(next / 1000000000ull);
      its.it_value.tv_nsec = (long)(next % 1000000000ull);
    }
    timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    pthread_mutex_unlock(&s->mu);
    int r = ppoll(pfd, (nfds_t)n, NULL, NULL);
    uint64_t woke = now_ns();
    pthread_mutex_lock(&s->mu);
    s->woke_ns = woke;
    uint64_t v;
    if (r > 0 && (pfd[0].revents & POLLIN)) {
      ssize_t rr = read(s->evfd, &v, sizeof v);
      (void)rr;
    }
    if (r > 0 && (pfd[1].revents & POLLIN)) {
      ssize_t rr = read(s->tfd, &v, sizeof v);
      (void)rr;
    }
    if (!s->stop) run_due(s);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  vs_report *rep = data;
  if (env && cb) {
    napi_value argv[6], global;
    uint64_t now = now_ns();
    double age = rep->sent_ns ? (double)(now - rep->sent_ns) / 1e6 : -1;
    double vips_age = rep->vips_ns ? (double)(now - rep->vips_ns) / 1e6 : -1;
    if (napi_create_uint32(env, rep->id, &argv[0]) == napi_ok && napi_create_uint32(env, rep->gen, &argv[1]) == napi_ok &&
        napi_create_double(env, age, &argv[2]) == napi_ok && napi_create_double(env, vips_age, &argv[3]) == napi_ok &&
        napi_create_int32(env, rep->garps, &argv[4]) == napi_ok && napi_create_int32(env, rep->vips_err, &argv[5]) == napi_ok &&
        napi_get_global(env, &global) == napi_ok)
      napi_call_function(env, global, cb, 6, argv, NULL);
  }
  free(rep);
}

static void sender_stop(vs_sender *s) {
  if (s->closed) return;
  s->closed = true;
  pthread_mutex_lock(&s->mu);
  s->stop = true;
  pthread_mutex_unlock(&s->mu);
  if (s->thread_started) {
    wake(s);
    pthread_join(s->thread, NULL);
    s->thread_started = false;
  }
  for (size_t i = 0; i < s->njobs; i++) {
    job_free_frames(s->jobs[i]);
    free(s->jobs[i]);
  }
  free(s->jobs);
  s->jobs = NULL;
  s->njobs = s->cap = 0;
  for (int i = 0; i < s->nrx; i++) close(s->rx[i].fd);
  s->nrx = 0;
  for (int i = 0; i < s->npk; i++) close(s->pk[i].fd);
  s->npk = 0;
  if (s->nlfd >= 0) close(s->nlfd);
  s->nlfd = -1;
  if (s->evfd >= 0) close(s->evfd);
  s->evfd = -1;
  if (s->tfd >= 0) close(s->tfd);
  s->tfd = -1;
  if (s->tsfn) napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
  s->tsfn = NULL;
}

static void cleanup_hook(void *arg) { sender_stop(arg); }

static void sender_finalize(napi_env env, void *data, void *hint) {
  vs_sender *s = data;
  napi_remove_env_cleanup_hook(env, cleanup_hook, s);
  sender_stop(s);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, "E_VRRP_SENDER", msg);
  return NULL;
}

/* vrrpSenderOpen(callback) */
static napi_value vs_open(napi_env env, napi_callback_info info) {
  napi_value argv[1], name, ext;
  napi_valuetype t;
  if (!napi_arg_count(env, info, 1, argv)) return NULL;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }
  vs_sender *s = calloc(1, sizeof *s);
  if (!s) return throw_errno(env, "vrrp sender", ENOMEM);
  /* Priority inheritance: the thread may run SCHED_RR (vrrpSenderSetRealtime) while the JS thread,
   * SCHED_OTHER, holds the lock for a moment; preempted meanwhile by other normal tasks it would
   * hold the real-time thread back with it. With PI it runs at the waiter's priority until it
   * unlocks. */
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
  pthread_mutex_init(&s->mu, &ma);
  pthread_mutexattr_destroy(&ma);
  s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (s->evfd < 0 || s->tfd < 0) {
    int err = errno;
    if (s->evfd >= 0) close(s->evfd);
    if (s->tfd >= 0) close(s->tfd);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return throw_errno(env, "eventfd/timerfd", err);
  }
  s->nlfd = -1; /* the rtnetlink socket of takeovers' VIPs: opened when first needed */
  if (napi_create_string_utf8(env, "keepalive-ts:vrrp-sender", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &s->tsfn) != napi_ok) {
    close(s->evfd);
    close(s->tfd);
    pthread_mutex_destroy(&s->mu);
    free(s);
    napi_throw_error(env, "ERR_NAPI", "vrrp sender: N-API setup failed");
    return NULL;
  }
  /* Reports must not keep the process alive on their own: the daemon has its own handles. */
  napi_unref_threadsafe_function(env, s->tsfn);
  int err = pthread_create(&s->thread, NULL, sender_main, s);
  if (!err) {
    s->thread_started = true;
    pthread_setname_np(s->thread, "kt-vrrp-send");
  }
  if (err || napi_create_external(env, s, sender_finalize, NULL, &ext) != napi_ok) {
    sender_stop(s);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return throw_errno(env, "vrrp sender thread", err ? err : EIO);
  }
  napi_add_env_cleanup_hook(env, cleanup_hook, s);
  return ext;
}

static bool arg_sender(napi_env env, napi_value v, vs_sender **out) {
  if (!napi_arg_external(env, v, "handle must come from vrrpSenderOpen()", (void **)out)) return false;
  if ((*out)->closed) {
    napi_throw_error(env, "E_CLOSED", "vrrp sender is closed");
    return false;
  }
  return true;
}

/* Opens the interface's rx socket if there is none yet (JS thread; the lock is not held). */
static bool ensure_rx(napi_env env, vs_sender *s, int ifindex) {
  pthread_mutex_lock(&s->mu);
  bool have = find_rx(s, ifindex) != NULL;
  bool full = s->nrx >= VS_MAX_RX;
  pthread_mutex_unlock(&s->mu);
  if (have) return true;
  if (full) {
    throw_errno(env, "vrrp sender: too many interfaces", ENOSPC);
    return false;
  }
  char name[IF_NAMESIZE];
  if (!if_indextoname((unsigned)ifindex, name)) {
    throw_errno(env, "if_indextoname", errno);
    return false;
  }
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, VRRP_PROTO);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name) + 1) < 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    throw_errno(env, "vrrp sender rx socket", err);
    return false;
  }
  pthread_mutex_lock(&s->mu);
  vs_rx *r = &s->rx[s->nrx++];
  memset(r, 0, sizeof *r);
  r->ifindex = ifindex;
  r->fd = fd;
  pthread_mutex_unlock(&s->mu);
  wake(s);
  return true;
}

/* Opens the thread's rtnetlink socket and the interface's AF_PACKET socket a takeover's extras need
 * (JS thread; the lock is not held). */
static bool ensure_extras_sockets(napi_env env, vs_sender *s, int garp_ifindex) {
  pthread_mutex_lock(&s->mu);
  bool have_nl = s->nlfd >= 0;
  bool have_pk = garp_ifindex <= 0 || find_pk(s, garp_ifindex) != NULL;
  bool full = s->npk >= VS_MAX_RX;
  pthread_mutex_unlock(&s->mu);
  if (!have_nl) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
      throw_errno(env, "vrrp sender rtnetlink socket", errno);
      return false;
    }
    pthread_mutex_lock(&s->mu);
    if (s->nlfd < 0) s->nlfd = fd;
    else close(fd);
    pthread_mutex_unlock(&s->mu);
  }
  if (have_pk) return true;
  if (full) {
    throw_errno(env, "vrrp sender: too many interfaces", ENOSPC);
    return false;
  }
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0); /* protocol 0: sends only, receives nothing */
  struct sockaddr_ll ll;
  memset(&ll, 0, sizeof ll);
  ll.sll_family = AF_PACKET;
  ll.sll_ifindex = garp_ifindex;
  if (fd < 0 || bind(fd, (struct sockaddr *)&ll, sizeof ll) < 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    throw_errno(env, "vrrp sender packet socket", err);
    return false;
  }
  pthread_mutex_lock(&s->mu);
  vs_pk *p = &s->pk[s->npk++];
  p->ifindex = garp_ifindex;
  p->fd = fd;
  pthread_mutex_unlock(&s->mu);
  return true;
}

/* extras (optional, takeover jobs): { nl: Buffer, nlCount, garpIfindex, garps: Buffer[] } or undefined. */
static bool parse_extras(napi_env env, napi_value v, vs_extras *x) {
  napi_valuetype t;
  memset(x, 0, sizeof *x);
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_undefined || t == napi_null) return true;
  napi_value nl, cnt, gi, garps;
  void *data;
  size_t len;
  int64_t count, garp_ifindex;
  uint32_t n = 0;
  if (t != napi_object || napi_get_named_property(env, v, "nl", &nl) != napi_ok || napi_get_named_property(env, v, "nlCount", &cnt) != napi_ok ||
      napi_get_named_property(env, v, "garpIfindex", &gi) != napi_ok || napi_get_named_property(env, v, "garps", &garps) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "extras must be { nl, nlCount, garpIfindex, garps }");
    return false;
  }
  if (!napi_arg_buffer(env, nl, "extras.nl must be a Buffer", &data, &len) || !napi_arg_int(env, cnt, 1, 1024, "extras.nlCount", &count) ||
      !napi_arg_int(env, gi, 0, INT32_MAX, "extras.garpIfindex", &garp_ifindex))
    return false;
  if (len < sizeof(struct nlmsghdr) || len > 65536 || napi_get_array_length(env, garps, &n) != napi_ok || n > VS_MAX_GARP || (n > 0 && garp_ifindex < 1)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "extras: nl 16..65536 bytes, garps an array of at most 64 frames on an interface");
    return false;
  }
  if (!(x->nl = malloc(len))) {
    napi_throw_error(env, "E_VRRP_SENDER", "vrrp sender: out of memory");
    return false;
  }
  memcpy(x->nl, data, len);
  x->nl_len = len;
  x->nl_count = (int)count;
  x->garp_ifindex = (int)garp_ifindex;
  for (uint32_t i = 0; i < n; i++) {
    napi_value f;
    if (napi_get_element(env, garps, i, &f) != napi_ok || !napi_arg_buffer(env, f, "extras.garps must be Buffers", &data, &len)) {
      extras_free(x);
      return false;
    }
    if (len < 14 || len > 1514 || !(x->garp[i] = malloc(len))) {
      extras_free(x);
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "garp frame length out of range");
      return false;
    }
    memcpy(x->garp[i], data, len);
    x->garp_len[i] = len;
    x->ngarp = (int)i + 1;
  }
  return true;
}

/* vrrpSenderSchedule(handle, id, gen, kind, fd, ifindex, vrid, packets[], dsts[], delayMs, periodMs, keepPhase[, extras]) */
static napi_value vs_schedule(napi_env env, napi_callback_info info) {
  napi_value argv[13];
  vs_sender *s;
  int64_t id, gen, kind, fd, ifindex, vrid;
  double delay, period;
  bool keep = false;
  uint32_t npkt = 0, ndst = 0;
  size_t argc = 13;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 12) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return NULL;
  }
  if (argc < 13 && napi_get_undefined(env, &argv[12]) != napi_ok) return NULL;
  if (!arg_sender(env, argv[0], &s) ||
      !napi_arg_int(env, argv[1], 0, UINT32_MAX, "id", &id) || !napi_arg_int(env, argv[2], 0, UINT32_MAX, "gen", &gen) ||
      !napi_arg_int(env, argv[3], KIND_PERIODIC, KIND_TAKEOVER, "kind", &kind) || !napi_arg_int(env, argv[4], 0, INT32_MAX, "fd", &fd) ||
      !napi_arg_int(env, argv[5], 1, INT32_MAX, "ifindex", &ifindex) || !napi_arg_int(env, argv[6], 1, 255, "vrid", &vrid) ||
      !napi_arg_number(env, argv[9], 0, 1e9, "delayMs", &delay) || !napi_arg_number(env, argv[10], 0, 1e9, "periodMs", &period))
    return NULL;
  if (napi_get_value_bool(env, argv[11], &keep) != napi_ok || napi_get_array_length(env, argv[7], &npkt) != napi_ok ||
      napi_get_array_length(env, argv[8], &ndst) != napi_ok || npkt != ndst || npkt == 0 || npkt > VS_MAX_DST) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "packets and dsts: arrays of the same length, 1..16");
    return NULL;
  }
  if (kind == KIND_PERIODIC && period < 1) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "periodMs must be >= 1 for a periodic job");
    return NULL;
  }
  vs_job fresh;
  memset(&fresh, 0, sizeof fresh);
  fresh.fd = -1;
  for (uint32_t i = 0; i < npkt; i++) {
    napi_value p, d;
    void *data;
    size_t len;
    if (napi_get_element(env, argv[7], i, &p) != napi_ok || napi_get_element(env, argv[8], i, &d) != napi_ok ||
        !napi_arg_buffer(env, p, "packets must be Buffers", &data, &len) || !napi_arg_ipv4(env, d, "dsts must be IPv4 addresses", &fresh.pkt[i].dst.sin_addr)) {
      job_free_frames(&fresh);
      return NULL;
    }
    if (len < 20 || len > 65535 || !(fresh.pkt[i].buf = malloc(len))) {
      job_free_frames(&fresh);
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "packet length out of range");
      return NULL;
    }
    memcpy(fresh.pkt[i].buf, data, len);
    fresh.pkt[i].len = len;
    fresh.pkt[i].dst.sin_family = AF_INET;
    fresh.npkt = (int)i + 1;
  }
  if (kind == KIND_TAKEOVER && !ensure_rx(env, s, (int)ifindex)) {
    job_free_frames(&fresh);
    return NULL;
  }
  if (kind == KIND_TAKEOVER && (!parse_extras(env, argv[12], &fresh.ex) || (fresh.ex.nl_len && !ensure_extras_sockets(env, s, fresh.ex.garp_ifindex)))) {
    job_free_frames(&fresh);
    return NULL;
  }
  fresh.fd = dup((int)fd);
  if (fresh.fd < 0) {
    int err = errno;
    job_free_frames(&fresh);
    return throw_errno(env, "dup", err);
  }
  pthread_mutex_lock(&s->mu);
  vs_job *j = find_job(s, (uint32_t)id);
  if (!j) {
    if (s->njobs == s->cap) {
      size_t cap = s->cap ? s->cap * 2 : 16;
      vs_job **nj = realloc(s->jobs, cap * sizeof *nj);
      if (!nj) {
        pthread_mutex_unlock(&s->mu);
        job_free_frames(&fresh);
        return throw_errno(env, "vrrp sender", ENOMEM);
      }
      s->jobs = nj;
      s->cap = cap;
    }
    j = calloc(1, sizeof *j);
    if (!j) {
      pthread_mutex_unlock(&s->mu);
      job_free_frames(&fresh);
      return throw_errno(env, "vrrp sender", ENOMEM);
    }
    j->fd = -1;
    j->id = (uint32_t)id;
    s->jobs[s->njobs++] = j;
  }
  uint64_t now = now_ns();
  uint64_t period_ns = (uint64_t)(period * 1e6);
  bool keep_phase = keep && j->active && j->kind == KIND_PERIODIC && kind == KIND_PERIODIC && j->period_ns == period_ns;
  uint64_t next = keep_phase ? j->next_ns : now + (uint64_t)(delay * 1e6);
  job_free_frames(j);
  memcpy(j->pkt, fresh.pkt, sizeof fresh.pkt);
  j->npkt = fresh.npkt;
  j->ex = fresh.ex;
  j->fd = fresh.fd;
  j->gen = (uint32_t)gen;
  j->kind = (int)kind;
  j->ifindex = (int)ifindex;
  j->vrid = (int)vrid;
  j->period_ns = period_ns;
  j->next_ns = next;
  j->armed_ns = now;
  j->active = true;
  pthread_mutex_unlock(&s->mu);
  wake(s);
  return NULL;
}

/* (handle, id): the arguments of cancel and stats. A closed sender is accepted (nothing to do). */
static bool args_handle_id(napi_env env, napi_callback_info info, vs_sender **s, int64_t *id) {
  napi_value argv[2];
  return napi_arg_count(env, info, 2, argv) && napi_arg_external(env, argv[0], "handle must come from vrrpSenderOpen()", (void **)s) &&
         napi_arg_int(env, argv[1], 0, UINT32_MAX, "id", id);
}

/* vrrpSenderCancel(handle, id) */
static napi_value vs_cancel(napi_env env, napi_callback_info info) {
  vs_sender *s;
  int64_t id;
  if (!args_handle_id(env, info, &s, &id)) return NULL;
  if (s->closed) return NULL;
  pthread_mutex_lock(&s->mu);
  vs_job *j = find_job(s, (uint32_t)id);
  if (j) {
    j->active = false;
    job_free_frames(j);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* vrrpSenderStats(handle, id) -> [sent, errors, maxLateUs, maxWakeLateUs] */
static napi_value vs_stats(napi_env env, napi_callback_info info) {
  napi_value out, v;
  vs_sender *s;
  int64_t id;
  if (!args_handle_id(env, info, &s, &id)) return NULL;
  double vals[4] = {0, 0, 0, 0};
  if (!s->closed) {
    pthread_mutex_lock(&s->mu);
    vs_job *j = find_job(s, (uint32_t)id);
    if (j) {
      vals[0] = j->sent;
      vals[1] = j->errors;
      vals[2] = j->max_late_ns / 1e3;
      vals[3] = j->max_wake_late_ns / 1e3;
    }
    pthread_mutex_unlock(&s->mu);
  }
  if (napi_create_array_with_length(env, 4, &out) != napi_ok) return NULL;
  for (uint32_t i = 0; i < 4; i++)
    if (napi_create_double(env, vals[i], &v) != napi_ok || napi_set_element(env, out, i, v) != napi_ok) return NULL;
  return out;
}

/* vrrpSenderHeard(handle, ifindex, vrid) -> ms since the thread last saw a packet of that VRID on the
 * interface (drained now, so a packet already queued counts), or -1: none seen / no rx socket there. */
static napi_value vs_heard(napi_env env, napi_callback_info info) {
  napi_value argv[3], out;
  vs_sender *s;
  int64_t ifindex, vrid;
  if (!napi_arg_count(env, info, 3, argv) || !napi_arg_external(env, argv[0], "handle must come from vrrpSenderOpen()", (void **)&s) ||
      !napi_arg_int(env, argv[1], 1, INT32_MAX, "ifindex", &ifindex) || !napi_arg_int(env, argv[2], 1, 255, "vrid", &vrid))
    return NULL;
  double age = -1;
  if (!s->closed) {
    pthread_mutex_lock(&s->mu);
    vs_rx *r = find_rx(s, (int)ifindex);
    if (r) {
      drain_rx(r);
      uint64_t at = r->last_rx[vrid];
      if (at) age = (double)(now_ns() - at) / 1e6;
    }
    pthread_mutex_unlock(&s->mu);
  }
  if (napi_create_double(env, age, &out) != napi_ok) return NULL;
  return out;
}

/* vrrpSenderSetRealtime(handle, priority, rlimitUs) -> errno (0: applied) */
static napi_value vs_set_realtime(napi_env env, napi_callback_info info) {
  napi_value argv[3], out;
  vs_sender *s;
  int64_t prio, rlim_us;
  if (!napi_arg_count(env, info, 3, argv) || !arg_sender(env, argv[0], &s) || !napi_arg_int(env, argv[1], 0, 99, "priority", &prio) ||
      !napi_arg_int(env, argv[2], 0, UINT32_MAX, "rlimitUs", &rlim_us))
    return NULL;
  int err = 0;
  if (prio > 0 && rlim_us > 0) {
    /* Before the policy: a thread never runs real-time without its limit. */
    struct rlimit rl = {.rlim_cur = (rlim_t)(rlim_us / 2 > 0 ? rlim_us / 2 : 1), .rlim_max = (rlim_t)rlim_us};
    if (setrlimit(RLIMIT_RTTIME, &rl) < 0) err = errno;
  }
  if (!err) {
    struct sched_param sp = {.sched_priority = (int)prio};
    err = pthread_setschedparam(s->thread, prio > 0 ? SCHED_RR : SCHED_OTHER, &sp);
  }
  if (napi_create_int32(env, err, &out) != napi_ok) return NULL;
  return out;
}

/* vrrpSenderClose(handle) */
static napi_value vs_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vs_sender *s;
  if (!napi_arg_count(env, info, 1, argv) || !napi_arg_external(env, argv[0], "handle must come from vrrpSenderOpen()", (void **)&s)) return NULL;
  napi_remove_env_cleanup_hook(env, cleanup_hook, s);
  sender_stop(s);
  return NULL;
}

napi_value vrrp_sender_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"vrrpSenderOpen", NULL, vs_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vrrpSenderSchedule", NULL, vs_schedule, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vrrpSenderCancel", NULL, vs_cancel, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vrrpSenderStats", NULL, vs_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vrrpSenderHeard", NULL, vs_heard, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vrrpSenderSetRealtime", NULL, vs_set_realtime, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vrrpSenderClose", NULL, vs_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
