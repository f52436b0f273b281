/* examples/c/shaper.c: shape a synthetic packet stream with libhtb.
 *
 * Loads a tc script (unchanged: the lines you would run on Linux), keeps
 * every leaf class backlogged with 1042-byte frames, runs the shaper on a
 * virtual clock, and prints what each class got, like `tc -s class show`
 * plus the achieved rate.
 *
 *   ./shaper [SCRIPT.tc] [SECONDS]
 *
 * SCRIPT defaults to examples/three-level.tc (or a small built-in script
 * when that file is not there); SECONDS (virtual) defaults to 10, the first
 * tenth being warm-up. Build (from the workspace root, after
 * `cargo build --release -p htb-ffi`):
 *
 *   cc -std=c11 -O2 -I include examples/c/shaper.c target/release/libhtb.a \
 *      -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o shaper
 *
 * or, once installed: cc examples/c/shaper.c $(pkg-config --cflags --libs htb)
 */

#include "htb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_LEN 1042u
#define BACKLOG 32 /* frames kept queued per leaf */
#define NS_PER_SEC 1000000000ull

/* The packet the library carries as an opaque pointer. */
typedef struct frame {
  uint32_t classid;
  uint32_t len;
  uint64_t seq;
  unsigned char payload[FRAME_LEN];
} frame;

static const char inline_script[] =
    "# two leaves sharing 30mbit by their quanta: 1:10 gets 10, 1:20 gets 20\n"
    "tc qdisc add dev eth0 root handle 1: htb default 20\n"
    "tc class add dev eth0 parent 1: classid 1:1 htb rate 30mbit\n"
    "tc class add dev eth0 parent 1:1 classid 1:10 htb rate 5mbit ceil 30mbit\n"
    "tc class add dev eth0 parent 1:1 classid 1:20 htb rate 10mbit ceil 30mbit\n";

static uint64_t seq;

static frame *new_frame(uint32_t classid) {
  frame *f = (frame *)malloc(sizeof *f);
  if (f == NULL) {
    perror("malloc");
    exit(1);
  }
  f->classid = classid;
  f->len = FRAME_LEN;
  f->seq = seq++;
  memset(f->payload, 0, sizeof f->payload);
  return f;
}

/* htb_packet_fn: the library hands a packet back (here: at free). */
static void free_frame(void *user, void *pkt, uint32_t len) {
  (void)user;
  (void)len;
  free(pkt);
}

static void die(const char *what, htb_status st) {
  char msg[512];
  size_t n = 0;
  htb_last_error(msg, sizeof msg, &n);
  fprintf(stderr, "shaper: %s: %s: %s\n", what, htb_status_str(st), msg);
  exit(2);
}

static void print_classid(char *buf, size_t len, uint32_t id) {
  snprintf(buf, len, "%x:%x", (unsigned)(id >> 16), (unsigned)(id & 0xffff));
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "examples/three-level.tc";
  double seconds = argc > 2 ? atof(argv[2]) : 10.0;
  uint64_t end, warmup, now = 0;
  htb_qdisc *q = NULL;
  htb_status st;
  size_t n = 0, i;
  uint64_t *bytes0, *pkts0, *lends0, *borrows0;
  htb_class_info info;
  htb_qdisc_stats qs;

  if (seconds <= 0) {
    fprintf(stderr, "usage: shaper [SCRIPT.tc] [SECONDS]\n");
    return 2;
  }
  end = (uint64_t)(seconds * (double)NS_PER_SEC);
  warmup = end / 10;

  st = htb_qdisc_load_tc_file(path, &q);
  if (st == HTB_STATUS_IO_ERROR && argc <= 1) {
    path = "(built-in script)";
    st = htb_qdisc_load_tc(inline_script, strlen(inline_script), &q);
  }
  if (st != HTB_STATUS_OK) {
    die(path, st);
  }
  if ((st = htb_class_count(q, &n)) != HTB_STATUS_OK) {
    die("htb_class_count", st);
  }
  bytes0 = (uint64_t *)calloc(n + 1, sizeof *bytes0);
  pkts0 = (uint64_t *)calloc(n + 1, sizeof *pkts0);
  lends0 = (uint64_t *)calloc(n + 1, sizeof *lends0);
  borrows0 = (uint64_t *)calloc(n + 1, sizeof *borrows0);
  if (bytes0 == NULL || pkts0 == NULL || lends0 == NULL || borrows0 == NULL) {
    return 1;
  }

  /* Every leaf backlogged: the demand is "as much as you can send". */
  for (i = 0; i < n; i++) {
    int k;
    if ((st = htb_class_at(q, i, &info)) != HTB_STATUS_OK) {
      die("htb_class_at", st);
    }
    for (k = 0; info.is_leaf && k < BACKLOG; k++) {
      frame *f = new_frame(info.classid);
      if ((st = htb_enqueue(q, f, f->len, f->classid, 0, NULL)) !=
          HTB_STATUS_OK) {
        die("htb_enqueue", st);
      }
    }
  }
  printf("%s: %zu classes, %.3g s of virtual time (first %.3g s warm-up), "
         "%u-byte frames, every leaf backlogged\n",
         path, n, seconds, (double)warmup / NS_PER_SEC, FRAME_LEN);

  /* The shaping loop: send whatever may go now; when nothing may, jump the
   * virtual clock to the next wake-up. Each frame sent is "transmitted"
   * (freed) and replaced by a new one in the same class. */
  while (now < end) {
    void *pkt = NULL;
    uint32_t len = 0;
    st = htb_dequeue(q, now, &pkt, &len);
    if (st == HTB_STATUS_OK) {
      frame *f = (frame *)pkt;
      uint32_t classid = f->classid;
      free(f);
      f = new_frame(classid);
      if ((st = htb_enqueue(q, f, f->len, classid, now, NULL)) !=
          HTB_STATUS_OK) {
        die("htb_enqueue", st);
      }
    } else if (st == HTB_STATUS_THROTTLED) {
      uint64_t wake = now;
      if ((st = htb_next_wakeup(q, &wake)) != HTB_STATUS_OK) {
        die("htb_next_wakeup", st);
      }
      now = wake > now ? wake : now + 1;
    } else {
      die("htb_dequeue", st);
    }
    /* Snapshot the counters when the warm-up ends: the table shows what
     * happened after it. */
    if (warmup != 0 && now >= warmup) {
      for (i = 0; i < n; i++) {
        htb_class_at(q, i, &info);
        bytes0[i] = info.stats.bytes;
        pkts0[i] = info.stats.packets;
        lends0[i] = info.stats.lends;
        borrows0[i] = info.stats.borrows;
      }
      warmup = 0;
    }
  }

  {
    double window = seconds * 0.9;
    printf("%-8s %-8s %5s %12s %12s %12s %10s %8s %8s\n", "class", "parent",
           "level", "rate", "ceil", "got Mbit/s", "packets", "lended",
           "borrowed");
    for (i = 0; i < n; i++) {
      char id[16], parent[16];
      htb_class_at(q, i, &info);
      print_classid(id, sizeof id, info.classid);
      if ((info.parent & 0xffff) == 0) {
        snprintf(parent, sizeof parent, "root");
      } else {
        print_classid(parent, sizeof parent, info.parent);
      }
      printf("%-8s %-8s %5u %7.3gMbit %7.3gMbit %12.4f %10llu %8llu %8llu\n",
             id, parent, info.level, (double)info.rate * 8 / 1e6,
             (double)info.ceil * 8 / 1e6,
             (double)(info.stats.bytes - bytes0[i]) * 8 / window / 1e6,
             (unsigned long long)(info.stats.packets - pkts0[i]),
             (unsigned long long)(info.stats.lends - lends0[i]),
             (unsigned long long)(info.stats.borrows - borrows0[i]));
    }
  }
  htb_qdisc_get_stats(q, &qs);
  printf("qdisc: sent %llu bytes %llu pkt (dropped %llu, overlimits %llu), "
         "backlog %llub %llup\n",
         (unsigned long long)qs.bytes, (unsigned long long)qs.packets,
         (unsigned long long)qs.drops, (unsigned long long)qs.overlimits,
         (unsigned long long)qs.backlog, (unsigned long long)qs.qlen);

  /* The frames still queued come back through the callback. */
  htb_qdisc_free(q, free_frame, NULL);
  free(bytes0);
  free(pkts0);
  free(lends0);
  free(borrows0);
  return 0;
}
