/* Per-packet cost of enqueue + dequeue through the C ABI, in the workload of
 * the Rust criterion bench `unthrottled/1024` (benches/src/lib.rs,
 * `Unthrottled` with `Layout::MEDIUM`): one top-level class, 32 inner
 * classes, 32 leaves under each (1024 leaves, 1057 classes), 100 Gbit/s
 * rate = ceil and 1 MB bursts everywhere, leaf quantum 1514, 4 packets of
 * backlog per leaf. One step = one 64-byte packet enqueued to a
 * pseudo-random leaf (xorshift64*, same seed) + one packet dequeued, clock
 * +10 ns. Nothing is ever throttled.
 *
 *   shaper_bench [STEPS] [INNER PER_INNER]
 *
 * Prints the minimum and median over 10 rounds of STEPS/10. The same loop in
 * Rust, on the same machine and in the same way, is
 * `cargo run --release -p htb-ffi --example rust_reference`.
 *
 * Build: `make -C htb-ffi bench` (release libhtb.a, cc -O2). */

#define _POSIX_C_SOURCE 199309L
#include "htb.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define HANDLE 1u
#define PKT_LEN 64u
#define NS_PER_STEP 10u
#define RATE_100GBIT (100000000000ull / 8u)
#define BACKLOG 4
#define REPS 10

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_u64(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545f4914f6cdd1dull;
}

static uint32_t below(uint32_t n) {
  return (uint32_t)(((next_u64() >> 32) * (uint64_t)n) >> 32);
}

static void check(htb_status st, const char *what) {
  if (st != HTB_STATUS_OK) {
    char msg[256];
    size_t n = 0;
    htb_last_error(msg, sizeof msg, &n);
    fprintf(stderr, "%s: %s (%s)\n", what, htb_status_str(st), msg);
    exit(1);
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  unsigned long long steps = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000ull;
  unsigned inner = argc > 3 ? (unsigned)atoi(argv[2]) : 32;
  unsigned per_inner = argc > 3 ? (unsigned)atoi(argv[3]) : 32;
  unsigned leaves = inner * per_inner;
  unsigned first_leaf = 2 + inner;
  static unsigned char dummy; /* every packet: the library never reads it */
  htb_qdisc *q = NULL;
  htb_class_config c = {0};
  uint64_t now = 0, bytes = 0, empty = 0, drops = 0;
  unsigned long long s;
  unsigned i, j;
  int r;
  double ns[REPS];
  double t0, t1;

  if (leaves == 0 || 1 + inner + leaves > 0xffff) {
    fprintf(stderr, "bad layout\n");
    return 2;
  }
  c.rate = RATE_100GBIT;
  c.ceil = RATE_100GBIT;
  c.burst = 1000000;
  c.cburst = 1000000;
  check(htb_qdisc_new(HANDLE, 0, 0, &q), "htb_qdisc_new");
  check(htb_class_add(q, HTB_CLASSID(HANDLE, 1), HTB_CLASSID(HANDLE, 0), &c, 0,
                      NULL, NULL),
        "add root");
  for (i = 0; i < inner; i++) {
    check(htb_class_add(q, HTB_CLASSID(HANDLE, 2 + i), HTB_CLASSID(HANDLE, 1),
                        &c, 0, NULL, NULL),
          "add inner");
  }
  c.quantum = 1514;
  for (i = 0; i < inner; i++) {
    for (j = 0; j < per_inner; j++) {
      check(htb_class_add(q, HTB_CLASSID(HANDLE, first_leaf + i * per_inner + j),
                          HTB_CLASSID(HANDLE, 2 + i), &c, 0, NULL, NULL),
            "add leaf");
    }
  }
  for (i = 0; i < BACKLOG; i++) {
    for (j = 0; j < leaves; j++) {
      check(htb_enqueue(q, &dummy, PKT_LEN, HTB_CLASSID(HANDLE, first_leaf + j),
                        0, NULL),
            "prefill");
    }
  }

  /* REPS timed rounds; the minimum is the figure least disturbed by other
   * load on the machine, the median the typical one. */
  for (r = 0; r < REPS; r++) {
    unsigned long long per = steps / REPS;
    t0 = now_s();
    for (s = 0; s < per; s++) {
      void *p;
      uint32_t len;
      uint32_t leaf = HTB_CLASSID(HANDLE, first_leaf + below(leaves));
      if (htb_enqueue(q, &dummy, PKT_LEN, leaf, now, NULL) != HTB_STATUS_OK) {
        drops++;
      }
      now += NS_PER_STEP;
      if (htb_dequeue(q, now, &p, &len) == HTB_STATUS_OK) {
        bytes += len;
      } else {
        empty++;
      }
    }
    t1 = now_s();
    ns[r] = (t1 - t0) * 1e9 / (double)(per ? per : 1);
  }
  qsort(ns, REPS, sizeof ns[0], cmp_double);

  printf("C ABI unthrottled/%u: min %.2f ns/packet, median %.2f ns/packet "
         "(enqueue + dequeue; %d rounds of %llu steps, %llu bytes out)\n",
         leaves, ns[0], ns[REPS / 2], REPS, steps / REPS,
         (unsigned long long)bytes);
  htb_qdisc_free(q, NULL, NULL);
  if (empty != 0 || drops != 0) {
    fprintf(stderr, "workload throttled or dropped: %llu empty, %llu drops\n",
            (unsigned long long)empty, (unsigned long long)drops);
    return 1;
  }
  return 0;
}
