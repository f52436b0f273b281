/* The shaper's C ABI tested from C: documented statuses for NULLs, freed
 * (then NULL) handles, zero lengths, bad ids and bad tc text; packet
 * ownership through every hand-back path (valgrind checks nothing leaks);
 * and a functional check in virtual time against the kernel's figures.
 *
 * Built by htb-ffi/tests/c_tests.rs with
 *   cc -std=c11 -Wall -Wextra -Werror -pedantic -I include ... libhtb.a
 * and run (under valgrind when it is installed). Exit status 0 = all passed. */

#include "htb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define MBIT(x) ((uint64_t)(x) * 1000000u / 8u)
#define SEC 1000000000ull

/* ---------------------------------------------------------------- helpers */

/* A heap packet, so valgrind sees any packet the library loses. */
typedef struct pkt {
  uint32_t leaf;
  uint32_t len;
} pkt;

static pkt *new_pkt(uint32_t leaf, uint32_t len) {
  pkt *p = (pkt *)malloc(sizeof *p);
  if (p == NULL) {
    abort();
  }
  p->leaf = leaf;
  p->len = len;
  return p;
}

typedef struct counter {
  unsigned packets;
  uint64_t bytes;
} counter;

/* htb_packet_fn: frees a handed-back packet and counts it. */
static void free_pkt(void *user, void *p, uint32_t len) {
  counter *c = (counter *)user;
  if (c != NULL) {
    c->packets++;
    c->bytes += len;
  }
  free(p);
}

static htb_class_config cfg_rate(uint64_t rate, uint64_t ceil, uint32_t prio) {
  htb_class_config c;
  memset(&c, 0, sizeof c);
  c.rate = rate;
  c.ceil = ceil;
  c.prio = prio;
  return c;
}

/* ------------------------------------------------------------------ tests */

static void test_version_and_strings(void) {
  char want[32];
  CHECK(htb_version() != NULL);
  CHECK(strcmp(htb_version(), HTB_VERSION_STRING) == 0);
  snprintf(want, sizeof want, "%d.%d.%d", HTB_VERSION_MAJOR, HTB_VERSION_MINOR,
           HTB_VERSION_PATCH);
  CHECK(strcmp(htb_version(), want) == 0);
  for (uint32_t s = 0; s <= HTB_STATUS_PANIC; s++) {
    CHECK(htb_status_str(s) != NULL && strlen(htb_status_str(s)) > 0);
  }
  CHECK(strcmp(htb_status_str(HTB_STATUS_OK), "ok") == 0);
  CHECK(strcmp(htb_status_str(9999), "unknown status") == 0);
  CHECK(strcmp(htb_drop_reason_str(HTB_DROP_REASON_QUEUE_FULL),
               "leaf queue full") == 0);
  CHECK(strcmp(htb_drop_reason_str(77), "unknown drop reason") == 0);
  CHECK(HTB_CLASSID(1, 0x10) == 0x00010010u);
  CHECK(HTB_CLASSID(0xffff, 0xffff) == 0xffffffffu);
}

static void test_last_error(void) {
  htb_qdisc *q = NULL;
  char small[8];
  size_t n = 12345;
  CHECK_ST(htb_last_error(NULL, 0, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_last_error(NULL, 8, &n), HTB_STATUS_NULL_PARAMETER);
  CHECK(n == 12345); /* not written on failure */

  CHECK_ST(htb_qdisc_new(0, 0, 0, &q), HTB_STATUS_INVALID_ARGUMENT);
  CHECK(q == NULL);
  CHECK(strstr(last_error(), "htb_qdisc_new: handle major") != NULL);
  /* Length query, then snprintf-style truncation. */
  CHECK_ST(htb_last_error(NULL, 0, &n), HTB_STATUS_OK);
  CHECK(n == strlen(last_error()));
  CHECK_ST(htb_last_error(small, sizeof small, &n), HTB_STATUS_OK);
  CHECK(n >= sizeof small);
  CHECK(strlen(small) == sizeof small - 1);
  CHECK(strncmp(small, "htb_qdi", 7) == 0);
  /* A successful call leaves the message alone. */
  CHECK_ST(htb_qdisc_new(1, 0, 0, &q), HTB_STATUS_OK);
  CHECK(strstr(last_error(), "htb_qdisc_new: handle major") != NULL);
  htb_qdisc_free(q, NULL, NULL);
}

static void test_nulls(void) {
  htb_qdisc *q = NULL;
  htb_qdisc *sentinel = (htb_qdisc *)&q; /* never dereferenced */
  htb_qdisc *out = sentinel;
  htb_class_config cfg = cfg_rate(MBIT(10), 0, 0);
  htb_class_stats cs;
  htb_qdisc_stats qs;
  htb_class_info ci;
  size_t count = 99;
  uint32_t u32 = 7, len = 7;
  uint64_t u64 = 7;
  void *p = NULL;
  int dummy = 0;
  const char *tc = "tc qdisc add dev x root handle 1: htb\n";

  /* Creation with a NULL out, or NULL input text. */
  CHECK_ST(htb_qdisc_new(1, 0, 0, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_qdisc_load_tc(tc, strlen(tc), NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_qdisc_load_tc(NULL, 10, &out), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_qdisc_load_tc(NULL, 0, &out), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_qdisc_load_tc_file(NULL, &out), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_qdisc_load_tc_file("x.tc", NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK(out == sentinel); /* outputs written only on success */
  CHECK(strstr(last_error(), "`out`") != NULL);

  /* free(NULL) and every call on a NULL handle. */
  htb_qdisc_free(NULL, NULL, NULL);
  htb_qdisc_free(NULL, free_pkt, NULL);
  CHECK_ST(htb_qdisc_reset(NULL, NULL, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_qdisc_handle(NULL, &u32), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_qdisc_set_default(NULL, 0x10), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_add(NULL, HTB_CLASSID(1, 1), HTB_CLASSID(1, 0), &cfg, 0,
                         NULL, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_change(NULL, HTB_CLASSID(1, 1), &cfg),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_delete(NULL, HTB_CLASSID(1, 1), 0, NULL, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_enqueue(NULL, &dummy, 100, 0, 0, &u32),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_dequeue(NULL, 0, &p, &len), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_next_wakeup(NULL, &u64), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_qdisc_get_stats(NULL, &qs), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_get_stats(NULL, HTB_CLASSID(1, 1), &cs),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_get_info(NULL, HTB_CLASSID(1, 1), &ci),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_count(NULL, &count), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_at(NULL, 0, &ci), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_foreach(NULL, NULL, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK(u32 == 7 && len == 7 && u64 == 7 && count == 99 && p == NULL);

  /* NULL outputs and inputs on a live handle. */
  CHECK_ST(htb_qdisc_new(1, 0x10, 0, &q), HTB_STATUS_OK);
  CHECK(q != NULL);
  CHECK_ST(htb_qdisc_handle(q, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 1), HTB_CLASSID(1, 0), NULL, 0,
                         NULL, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 0x10), HTB_CLASSID(1, 0), &cfg, 0,
                         NULL, NULL),
           HTB_STATUS_OK);
  CHECK_ST(htb_class_change(q, HTB_CLASSID(1, 0x10), NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_enqueue(q, NULL, 100, HTB_CLASSID(1, 0x10), 0, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_dequeue(q, 0, NULL, &len), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_dequeue(q, 0, &p, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_next_wakeup(q, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_qdisc_get_stats(q, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_get_stats(q, HTB_CLASSID(1, 0x10), NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_get_info(q, HTB_CLASSID(1, 0x10), NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_count(q, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_at(q, 0, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_class_foreach(q, NULL, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_classid_parse(NULL, 4, &u32), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_classid_parse("1:10", 4, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_rate_parse(NULL, 1, &u64), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_size_parse("1k", 2, NULL), HTB_STATUS_NULL_PARAMETER);

  /* Freed, then NULL: the documented way to drop a handle. */
  htb_qdisc_free(q, NULL, NULL);
  q = NULL;
  CHECK_ST(htb_enqueue(q, &dummy, 100, 0, 0, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_dequeue(q, 0, &p, &len), HTB_STATUS_NULL_PARAMETER);
  htb_qdisc_free(q, NULL, NULL);
}

static void test_zero_lengths_and_parsing(void) {
  htb_qdisc *q = NULL;
  uint32_t id = 7;
  uint64_t v = 7;
  int dummy = 0;
  void *p = NULL;
  uint32_t len = 0;

  CHECK_ST(htb_qdisc_new(1, 0, 0, &q), HTB_STATUS_OK);
  CHECK_ST(htb_enqueue(q, &dummy, 0, 0, 0, NULL), HTB_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "length is 0") != NULL);
  CHECK_ST(htb_dequeue(q, 0, &p, &len), HTB_STATUS_EMPTY);
  htb_qdisc_free(q, NULL, NULL);

  /* An empty script has no qdisc line. */
  q = NULL;
  CHECK_ST(htb_qdisc_load_tc("", 0, &q), HTB_STATUS_PARSE_ERROR);
  CHECK(q == NULL);

  CHECK_ST(htb_classid_parse("", 0, &id), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_rate_parse("", 0, &v), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_size_parse("", 0, &v), HTB_STATUS_INVALID_ARGUMENT);
  CHECK(id == 7 && v == 7);
  /* Lengths count: only the first 4 bytes of "1:10xyz" are read. */
  CHECK_ST(htb_classid_parse("1:10xyz", 4, &id), HTB_STATUS_OK);
  CHECK(id == HTB_CLASSID(1, 0x10));
  CHECK_ST(htb_classid_parse("1:", 2, &id), HTB_STATUS_OK);
  CHECK(id == HTB_CLASSID(1, 0));
  CHECK_ST(htb_classid_parse("1:10000", 7, &id), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_rate_parse("30mbit", 6, &v), HTB_STATUS_OK);
  CHECK(v == 3750000);
  CHECK_ST(htb_rate_parse("1mbps", 5, &v), HTB_STATUS_OK); /* megaBYTES */
  CHECK(v == 1000000);
  CHECK_ST(htb_rate_parse("fast", 4, &v), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_size_parse("15k", 3, &v), HTB_STATUS_OK);
  CHECK(v == 15360);
  CHECK_ST(htb_classid_parse("\xff\xfe", 2, &id), HTB_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "UTF-8") != NULL);
}

static void test_bad_ids_and_config(void) {
  htb_qdisc *q = NULL;
  htb_class_config c = cfg_rate(MBIT(10), MBIT(20), 0);
  htb_class_stats cs;
  htb_class_info ci;
  uint32_t parent;
  uint32_t minor;

  CHECK_ST(htb_qdisc_new(0x10000, 0, 0, &q), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_qdisc_new(1, 0x10000, 0, &q), HTB_STATUS_INVALID_ARGUMENT);
  CHECK(q == NULL);
  CHECK_ST(htb_qdisc_new(1, 0x20, 0, &q), HTB_STATUS_OK);
  CHECK_ST(htb_qdisc_set_default(q, 0x10000), HTB_STATUS_INVALID_ARGUMENT);

  /* Minor 0 names the qdisc; another major is not ours. */
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 0), HTB_CLASSID(1, 0), &c, 0, NULL,
                         NULL),
           HTB_STATUS_BAD_CLASS_ID);
  CHECK_ST(htb_class_add(q, HTB_CLASSID(2, 1), HTB_CLASSID(1, 0), &c, 0, NULL,
                         NULL),
           HTB_STATUS_BAD_CLASS_ID);
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 1), HTB_CLASSID(1, 9), &c, 0, NULL,
                         NULL),
           HTB_STATUS_UNKNOWN_PARENT);
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 1), HTB_CLASSID(1, 0), &c, 0, NULL,
                         NULL),
           HTB_STATUS_OK);
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 1), HTB_CLASSID(1, 0), &c, 0, NULL,
                         NULL),
           HTB_STATUS_DUPLICATE_CLASS);
  CHECK(strstr(last_error(), "class 1:1 already exists") != NULL);

  /* Bad configurations. */
  c.rate = 0;
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 2), HTB_CLASSID(1, 1), &c, 0, NULL,
                         NULL),
           HTB_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "rate is required") != NULL);
  c.rate = MBIT(10);
  c.linklayer = 7;
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 2), HTB_CLASSID(1, 1), &c, 0, NULL,
                         NULL),
           HTB_STATUS_INVALID_ARGUMENT);
  c.linklayer = HTB_LINKLAYER_ETHERNET;
  c.rate = 1; /* 1600 bytes at 1 B/s: tc's "burst out of range" */
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 2), HTB_CLASSID(1, 1), &c, 0, NULL,
                         NULL),
           HTB_STATUS_INVALID_ARGUMENT);
  c.rate = MBIT(10);

  /* Unknown classes everywhere an id is looked up. */
  CHECK_ST(htb_class_change(q, HTB_CLASSID(1, 0x99), &c),
           HTB_STATUS_UNKNOWN_CLASS);
  CHECK_ST(htb_class_delete(q, HTB_CLASSID(1, 0x99), 0, NULL, NULL),
           HTB_STATUS_UNKNOWN_CLASS);
  CHECK_ST(htb_class_delete(q, HTB_CLASSID(1, 0), 0, NULL, NULL),
           HTB_STATUS_UNKNOWN_CLASS);
  CHECK_ST(htb_class_get_stats(q, HTB_CLASSID(1, 0x99), &cs),
           HTB_STATUS_UNKNOWN_CLASS);
  CHECK_ST(htb_class_get_info(q, 0xdeadbeefu, &ci), HTB_STATUS_UNKNOWN_CLASS);
  CHECK_ST(htb_class_at(q, 1, &ci), HTB_STATUS_OUT_OF_RANGE);
  CHECK_ST(htb_class_at(q, (size_t)-1, &ci), HTB_STATUS_OUT_OF_RANGE);

  /* A class with children cannot go. */
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 2), HTB_CLASSID(1, 1), &c, 0, NULL,
                         NULL),
           HTB_STATUS_OK);
  CHECK_ST(htb_class_delete(q, HTB_CLASSID(1, 1), 0, NULL, NULL),
           HTB_STATUS_CLASS_HAS_CHILDREN);

  /* At most 8 levels: 1:1 > 1:2 > ... > 1:8 is fine, a 9th level is not. */
  parent = HTB_CLASSID(1, 2);
  for (minor = 3; minor <= 8; minor++) {
    CHECK_ST(htb_class_add(q, HTB_CLASSID(1, minor), parent, &c, 0, NULL, NULL),
             HTB_STATUS_OK);
    parent = HTB_CLASSID(1, minor);
  }
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 9), parent, &c, 0, NULL, NULL),
           HTB_STATUS_TOO_DEEP);
  htb_qdisc_free(q, NULL, NULL);
}

static void test_bad_tc_text(void) {
  htb_qdisc *q = NULL;
  const char *sfq = "tc qdisc add dev x root handle 1: sfq\n";
  const char *norate =
      "tc qdisc add dev x root handle 1: htb\n"
      "tc class add dev x parent 1: classid 1:1 htb ceil 10mbit\n";
  const char *filter =
      "tc qdisc add dev x root handle 1: htb\n"
      "tc filter add dev x parent 1: protocol ip u32 match ip dport 22 0xffff "
      "flowid 1:10\n";
  const char bad_utf8[] = "tc qdisc add dev x root handle 1: htb \xff\n";

  CHECK_ST(htb_qdisc_load_tc(sfq, strlen(sfq), &q), HTB_STATUS_PARSE_ERROR);
  CHECK(strstr(last_error(), "<tc>:1:35: error: unsupported qdisc") != NULL);
  CHECK_ST(htb_qdisc_load_tc(norate, strlen(norate), &q),
           HTB_STATUS_PARSE_ERROR);
  CHECK(strstr(last_error(), "<tc>:2:") != NULL);
  CHECK_ST(htb_qdisc_load_tc(filter, strlen(filter), &q),
           HTB_STATUS_PARSE_ERROR);
  CHECK_ST(htb_qdisc_load_tc(bad_utf8, sizeof bad_utf8 - 1, &q),
           HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_qdisc_load_tc_file("/nonexistent/dir/x.tc", &q),
           HTB_STATUS_IO_ERROR);
  CHECK(strstr(last_error(), "/nonexistent/dir/x.tc") != NULL);
  CHECK(q == NULL);
}

/* Every path by which the library hands a packet back: dequeue, drop at
 * enqueue (still ours), purge on class add (leaf became inner) and delete,
 * reset, and free. Every packet is heap-allocated: valgrind fails the run
 * if one is lost. */
static void test_packet_ownership(void) {
  htb_qdisc *q = NULL;
  htb_class_config c = cfg_rate(MBIT(10), MBIT(10), 0);
  counter purged = {0, 0}, freed = {0, 0};
  htb_qdisc_stats qs;
  htb_class_stats cs;
  uint32_t reason = 99, len = 0, handle = 0;
  void *p = NULL;
  uint64_t wake = 0;
  int i;

  CHECK_ST(htb_qdisc_new(1, 0x10, 0, &q), HTB_STATUS_OK);
  CHECK_ST(htb_qdisc_handle(q, &handle), HTB_STATUS_OK);
  CHECK(handle == HTB_CLASSID(1, 0));
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 1), handle, &c, 0, NULL, NULL),
           HTB_STATUS_OK);
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 0x10), HTB_CLASSID(1, 1), &c, 0,
                         NULL, NULL),
           HTB_STATUS_OK);

  /* Empty qdisc. */
  CHECK_ST(htb_dequeue(q, 0, &p, &len), HTB_STATUS_EMPTY);
  CHECK_ST(htb_next_wakeup(q, &wake), HTB_STATUS_EMPTY);

  /* Fill 1:10 to its pfifo limit (1000); the next one is refused and ours. */
  for (i = 0; i < 1000; i++) {
    CHECK_ST(htb_enqueue(q, new_pkt(0x10, 1000), 1000, HTB_CLASSID(1, 0x10),
                         0, &reason),
             HTB_STATUS_OK);
  }
  CHECK(reason == 99); /* not written on success */
  {
    pkt *extra = new_pkt(0x10, 1000);
    CHECK_ST(htb_enqueue(q, extra, 1000, HTB_CLASSID(1, 0x10), 0, &reason),
             HTB_STATUS_DROPPED);
    CHECK(reason == HTB_DROP_REASON_QUEUE_FULL);
    /* Unclassified (0) goes to the default class 1:10: also full. */
    CHECK_ST(htb_enqueue(q, extra, 1000, 0, 0, NULL), HTB_STATUS_DROPPED);
    free(extra);
  }
  CHECK_ST(htb_class_get_stats(q, HTB_CLASSID(1, 0x10), &cs), HTB_STATUS_OK);
  CHECK(cs.qlen == 1000 && cs.backlog == 1000000 && cs.drops == 2);

  /* The qdisc handle means the direct queue: unshaped, first out. */
  CHECK_ST(htb_enqueue(q, new_pkt(0, 64), 64, handle, 0, NULL), HTB_STATUS_OK);
  CHECK_ST(htb_dequeue(q, 0, &p, &len), HTB_STATUS_OK);
  CHECK(len == 64 && ((pkt *)p)->leaf == 0);
  free(p);

  /* Dequeue until throttled: 10 Mbit with a 1600-byte burst lets one or
   * two 1000-byte packets through at t=0, then asks to wait. */
  for (i = 0; i < 10; i++) {
    htb_status st = htb_dequeue(q, 0, &p, &len);
    if (st != HTB_STATUS_OK) {
      CHECK_ST(st, HTB_STATUS_THROTTLED);
      break;
    }
    CHECK(len == 1000 && ((pkt *)p)->leaf == 0x10);
    free(p);
  }
  CHECK(i >= 1 && i < 10);
  CHECK_ST(htb_next_wakeup(q, &wake), HTB_STATUS_OK);
  CHECK(wake > 0 && wake < SEC);
  CHECK_ST(htb_dequeue(q, wake, &p, &len), HTB_STATUS_OK);
  free(p);

  /* Adding a child to the leaf 1:10 purges its queue through the callback. */
  CHECK_ST(htb_qdisc_get_stats(q, &qs), HTB_STATUS_OK);
  {
    uint64_t queued = qs.qlen;
    CHECK(queued > 990);
    CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 0x11), HTB_CLASSID(1, 0x10), &c,
                           wake, free_pkt, &purged),
             HTB_STATUS_OK);
    CHECK(purged.packets == queued && purged.bytes == queued * 1000);
  }
  /* Delete purges too. */
  for (i = 0; i < 5; i++) {
    CHECK_ST(htb_enqueue(q, new_pkt(0x11, 100), 100, HTB_CLASSID(1, 0x11),
                         wake, NULL),
             HTB_STATUS_OK);
  }
  purged.packets = 0;
  CHECK_ST(htb_class_delete(q, HTB_CLASSID(1, 0x11), wake, free_pkt, &purged),
           HTB_STATUS_OK);
  CHECK(purged.packets == 5);
  /* 1:10 is a leaf again: queue to it, reset hands everything back. */
  for (i = 0; i < 3; i++) {
    CHECK_ST(htb_enqueue(q, new_pkt(0x10, 100), 100, 0, wake, NULL),
             HTB_STATUS_OK);
  }
  purged.packets = 0;
  CHECK_ST(htb_qdisc_reset(q, free_pkt, &purged), HTB_STATUS_OK);
  CHECK(purged.packets == 3);
  CHECK_ST(htb_dequeue(q, wake, &p, &len), HTB_STATUS_EMPTY);

  /* Free hands back whatever is still queued. */
  for (i = 0; i < 7; i++) {
    CHECK_ST(htb_enqueue(q, new_pkt(0x10, 100), 100, HTB_CLASSID(1, 0x10),
                         wake, NULL),
             HTB_STATUS_OK);
  }
  CHECK_ST(htb_enqueue(q, new_pkt(0, 100), 100, handle, wake, NULL),
           HTB_STATUS_OK);
  htb_qdisc_free(q, free_pkt, &freed);
  CHECK(freed.packets == 8 && freed.bytes == 800);

  /* Default 0: unclassified traffic takes the direct queue. */
  CHECK_ST(htb_qdisc_new(1, 0, 0, &q), HTB_STATUS_OK);
  CHECK_ST(htb_enqueue(q, new_pkt(0, 100), 100, HTB_CLASSID(1, 0x42), 0, NULL),
           HTB_STATUS_OK);
  CHECK_ST(htb_qdisc_get_stats(q, &qs), HTB_STATUS_OK);
  CHECK(qs.direct_packets == 1 && qs.qlen == 1);
  freed.packets = 0;
  htb_qdisc_free(q, free_pkt, &freed);
  CHECK(freed.packets == 1);
}

/* ------------------------------------------------------------ functional */

typedef struct visit {
  unsigned n;
  unsigned stop_after;
  uint32_t ids[8];
} visit;

static int32_t visit_class(void *user, const htb_class_info *info) {
  visit *v = (visit *)user;
  if (v->n < 8) {
    v->ids[v->n] = info->classid;
  }
  v->n++;
  return v->stop_after != 0 && v->n >= v->stop_after;
}

/* Both leaves backlogged (closed loop: each packet sent is replaced in its
 * class) from t=0; returns the Mbit/s each leaf got over [1 s, 11 s). */
static void shape(htb_qdisc *q, double mbit[2]) {
  static const uint32_t leaves[2] = {HTB_CLASSID(1, 0x10), HTB_CLASSID(1, 0x20)};
  static uint32_t tag[2] = {0, 1};
  const uint32_t plen = 1042;
  uint64_t now = 0, bytes[2] = {0, 0};
  int i, k;
  for (k = 0; k < 2; k++) {
    for (i = 0; i < 50; i++) {
      CHECK_ST(htb_enqueue(q, &tag[k], plen, leaves[k], 0, NULL), HTB_STATUS_OK);
    }
  }
  while (now < 11 * SEC) {
    void *p = NULL;
    uint32_t len = 0;
    htb_status st = htb_dequeue(q, now, &p, &len);
    if (st == HTB_STATUS_OK) {
      uint32_t leaf = *(uint32_t *)p;
      if (now >= SEC) {
        bytes[leaf] += len;
      }
      if (htb_enqueue(q, p, len, leaves[leaf], now, NULL) != HTB_STATUS_OK) {
        CHECK(0);
        break;
      }
    } else if (st == HTB_STATUS_THROTTLED) {
      uint64_t wake = 0;
      CHECK_ST(htb_next_wakeup(q, &wake), HTB_STATUS_OK);
      now = wake > now ? wake : now + 1;
    } else {
      CHECK_ST(st, HTB_STATUS_OK);
      break;
    }
  }
  for (k = 0; k < 2; k++) {
    mbit[k] = (double)bytes[k] * 8.0 / 10.0 / 1e6;
  }
}

static void check_rates(const char *what, const double mbit[2]) {
  printf("%s: 1:10 %.4f Mbit/s, 1:20 %.4f Mbit/s (kernel: 10 / 20)\n", what,
         mbit[0], mbit[1]);
  CHECK(mbit[0] > 9.9 && mbit[0] < 10.1);
  CHECK(mbit[1] > 19.8 && mbit[1] < 20.2);
}

static void test_functional(void) {
  /* README parity table, first row: top 30mbit; leaves 5/30 and 10/30, same
   * prio, default quantum (62500 / 125000 bytes: the excess 15 Mbit is split
   * 1:2) -> the kernel measured 10 / 20 Mbit. */
  static const char script[] =
      "# the README's first parity scenario\n"
      "DEV=eth0\n"
      "tc qdisc add dev $DEV root handle 1: htb default 20\n"
      "tc class add dev $DEV parent 1: classid 1:1 htb rate 30mbit\n"
      "tc class add dev $DEV parent 1:1 classid 1:10 htb rate 5mbit ceil "
      "30mbit\n"
      "tc class add dev $DEV parent 1:1 classid 1:20 htb rate 10mbit \\\n"
      "    ceil 30mbit\n";
  htb_qdisc *q = NULL;
  htb_class_config top = cfg_rate(MBIT(30), 0, 0);
  htb_class_config a = cfg_rate(MBIT(5), MBIT(30), 0);
  htb_class_config b = cfg_rate(MBIT(10), MBIT(30), 0);
  htb_class_info ci;
  htb_class_stats cs10, cs20;
  htb_qdisc_stats qs;
  size_t n = 0;
  double mbit[2];
  visit v;

  /* Built through the API. */
  CHECK_ST(htb_qdisc_new(1, 0x20, 0, &q), HTB_STATUS_OK);
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 1), HTB_CLASSID(1, 0), &top, 0,
                         NULL, NULL),
           HTB_STATUS_OK);
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 0x20), HTB_CLASSID(1, 1), &b, 0,
                         NULL, NULL),
           HTB_STATUS_OK);
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 0x10), HTB_CLASSID(1, 1), &a, 0,
                         NULL, NULL),
           HTB_STATUS_OK);
  shape(q, mbit);
  check_rates("API-built tree", mbit);
  htb_qdisc_free(q, NULL, NULL); /* packets are static tags: nothing to free */

  /* Loaded from the tc script: same figures, plus stats and iteration. */
  q = NULL;
  CHECK_ST(htb_qdisc_load_tc(script, sizeof script - 1, &q), HTB_STATUS_OK);
  if (q == NULL) {
    return;
  }
  shape(q, mbit);
  check_rates("tc-loaded tree", mbit);

  CHECK_ST(htb_class_count(q, &n), HTB_STATUS_OK);
  CHECK(n == 3);
  CHECK_ST(htb_class_at(q, 0, &ci), HTB_STATUS_OK);
  CHECK(ci.classid == HTB_CLASSID(1, 1) && ci.parent == HTB_CLASSID(1, 0));
  CHECK(ci.level == 7 && !ci.is_leaf && ci.rate == MBIT(30) &&
        ci.ceil == MBIT(30));
  CHECK_ST(htb_class_at(q, 1, &ci), HTB_STATUS_OK);
  CHECK(ci.classid == HTB_CLASSID(1, 0x10) && ci.parent == HTB_CLASSID(1, 1));
  CHECK(ci.level == 0 && ci.is_leaf && ci.prio == 0 && ci.rate == MBIT(5) &&
        ci.ceil == MBIT(30) && ci.quantum == 62500 && ci.burst == 1600 &&
        ci.linklayer == HTB_LINKLAYER_ETHERNET && ci.mode <= HTB_MODE_CAN_SEND);
  CHECK_ST(htb_class_at(q, 2, &ci), HTB_STATUS_OK);
  CHECK(ci.classid == HTB_CLASSID(1, 0x20) && ci.quantum == 125000);
  CHECK_ST(htb_class_at(q, 3, &ci), HTB_STATUS_OUT_OF_RANGE);

  memset(&v, 0, sizeof v);
  CHECK_ST(htb_class_foreach(q, visit_class, &v), HTB_STATUS_OK);
  CHECK(v.n == 3 && v.ids[0] == HTB_CLASSID(1, 1) &&
        v.ids[1] == HTB_CLASSID(1, 0x10) && v.ids[2] == HTB_CLASSID(1, 0x20));
  memset(&v, 0, sizeof v);
  v.stop_after = 1;
  CHECK_ST(htb_class_foreach(q, visit_class, &v), HTB_STATUS_OK);
  CHECK(v.n == 1);

  CHECK_ST(htb_class_get_stats(q, HTB_CLASSID(1, 0x10), &cs10), HTB_STATUS_OK);
  CHECK_ST(htb_class_get_stats(q, HTB_CLASSID(1, 0x20), &cs20), HTB_STATUS_OK);
  CHECK_ST(htb_qdisc_get_stats(q, &qs), HTB_STATUS_OK);
  CHECK(cs10.lends > 0 && cs10.borrows > 0 && cs20.borrows > 0);
  CHECK(cs10.qlen == 50 && cs20.qlen == 50 && qs.qlen == 100);
  CHECK(qs.packets == cs10.packets + cs20.packets);
  CHECK(qs.bytes == cs10.bytes + cs20.bytes);
  CHECK(qs.drops == 0);
  printf("stats: 1:10 sent %llu pkts (lended %llu, borrowed %llu), "
         "1:20 sent %llu pkts; qdisc overlimits %llu\n",
         (unsigned long long)cs10.packets, (unsigned long long)cs10.lends,
         (unsigned long long)cs10.borrows, (unsigned long long)cs20.packets,
         (unsigned long long)qs.overlimits);

  /* change: 1:20 now capped at its rate, and second in priority. */
  b.ceil = MBIT(10);
  b.prio = 1;
  CHECK_ST(htb_class_change(q, HTB_CLASSID(1, 0x20), &b), HTB_STATUS_OK);
  CHECK_ST(htb_class_get_info(q, HTB_CLASSID(1, 0x20), &ci), HTB_STATUS_OK);
  CHECK(ci.ceil == MBIT(10) && ci.prio == 1 && ci.stats.qlen == 50);
  htb_qdisc_free(q, NULL, NULL);
}

/* Two qdiscs alike: the one fed by bursts must do exactly what the one fed
 * packet by packet does. Packets are heap-allocated, so valgrind sees any
 * that is lost. */
static htb_qdisc *burst_tree(void) {
  htb_qdisc *q = NULL;
  htb_class_config top = cfg_rate(MBIT(20), 0, 0);
  htb_class_config leaf = cfg_rate(MBIT(5), MBIT(20), 0);
  int k;
  CHECK_ST(htb_qdisc_new(1, 0x10, 0, &q), HTB_STATUS_OK);
  CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 1), HTB_CLASSID(1, 0), &top, 0,
                         NULL, NULL),
           HTB_STATUS_OK);
  for (k = 0; k < 4; k++) {
    leaf.prio = (uint32_t)(k & 1);
    CHECK_ST(htb_class_add(q, HTB_CLASSID(1, 0x10 + k), HTB_CLASSID(1, 1),
                           &leaf, 0, NULL, NULL),
             HTB_STATUS_OK);
  }
  return q;
}

static void test_bursts(void) {
  htb_qdisc *one = burst_tree(), *many = burst_tree();
  htb_burst_pkt b[64], out[64];
  uint32_t reasons[64];
  size_t queued = 99, n = 99, i;
  uint32_t reason, len;
  void *p;
  counter freed = {0, 0};
  uint64_t now = 0;
  unsigned round, sent_one = 0, sent_many = 0, refused = 0;
  htb_qdisc_stats s1, s2;
  htb_class_stats c1, c2;
  pkt dummy = {0, 0};

  if (one == NULL || many == NULL) {
    return;
  }
  /* Arguments. */
  CHECK_ST(htb_enqueue_burst(NULL, b, 1, 0, &queued, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_enqueue_burst(many, b, 1, 0, NULL, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_enqueue_burst(many, NULL, 0, 0, &queued, NULL), HTB_STATUS_OK);
  CHECK(queued == 0);
  CHECK_ST(htb_enqueue_burst(many, NULL, 2, 0, &queued, NULL),
           HTB_STATUS_NULL_PARAMETER);
  b[0].pkt = &dummy, b[0].len = 100, b[0].classid = HTB_CLASSID(1, 0x10);
  b[1].pkt = NULL, b[1].len = 100, b[1].classid = HTB_CLASSID(1, 0x10);
  CHECK_ST(htb_enqueue_burst(many, b, 2, 0, &queued, NULL),
           HTB_STATUS_NULL_PARAMETER);
  b[1].pkt = &dummy, b[1].len = 0;
  CHECK_ST(htb_enqueue_burst(many, b, 2, 0, &queued, NULL),
           HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_dequeue_burst(many, 0, out, 4, &n), HTB_STATUS_EMPTY);
  CHECK(n == 0); /* nothing was queued by the refused calls */
  CHECK_ST(htb_dequeue_burst(many, 0, NULL, 4, &n), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_dequeue_burst(many, 0, out, 4, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_dequeue_burst(NULL, 0, out, 4, &n), HTB_STATUS_NULL_PARAMETER);

  /* Traffic: 30 bursts of 40 flood 1:13 past its pfifo limit of 1000 (200
   * refused); then bursts of 40 to four leaves, the handle (direct queue)
   * and an unknown class (the default 1:10), each followed by dequeues. */
  for (round = 0; round < 90; round++) {
    for (i = 0; i < 40; i++) {
      uint32_t minor = (uint32_t)((i * 7 + round) % 6);
      uint32_t id = minor == 4   ? HTB_CLASSID(1, 0)
                    : minor == 5 ? HTB_CLASSID(1, 0x77)
                                 : HTB_CLASSID(1, 0x10 + minor);
      if (round < 30) {
        id = HTB_CLASSID(1, 0x13); /* 1200 packets: 200 refused */
      }
      len = 64 + (uint32_t)((round * 40 + i) * 37 % 1400);
      b[i].pkt = new_pkt(id & 0xffff, len);
      b[i].len = len;
      b[i].classid = id;
      /* The twin gets its own copy, packet by packet. */
      {
        pkt *twin = new_pkt(id & 0xffff, len);
        if (htb_enqueue(one, twin, len, id, now, &reason) != HTB_STATUS_OK) {
          free(twin);
          refused++;
        }
      }
    }
    CHECK_ST(htb_enqueue_burst(many, b, 40, now, &queued, reasons),
             HTB_STATUS_OK);
    for (i = 0; i < 40 - queued; i++) {
      CHECK(reasons[i] == HTB_DROP_REASON_QUEUE_FULL &&
            b[i].classid == HTB_CLASSID(1, 0x13));
      free(b[i].pkt);
      refused--;
    }
    now += 2000000; /* 2 ms */
    if (round < 30) {
      continue;
    }
    for (;;) {
      htb_status s1st = htb_dequeue_burst(many, now, out, 16, &n);
      size_t k;
      for (k = 0; k < n; k++) {
        htb_status st = htb_dequeue(one, now, &p, &len);
        CHECK_ST(st, HTB_STATUS_OK);
        if (st != HTB_STATUS_OK) {
          break;
        }
        CHECK(len == out[k].len && out[k].classid == 0 &&
              ((pkt *)p)->leaf == ((pkt *)out[k].pkt)->leaf &&
              ((pkt *)p)->len == ((pkt *)out[k].pkt)->len);
        free(p);
        free(out[k].pkt);
        sent_one++, sent_many++;
      }
      if (n < 16) {
        /* The burst stopped at a dequeue that found nothing: so must the
         * twin's next one. */
        htb_status st = htb_dequeue(one, now, &p, &len);
        CHECK(st == HTB_STATUS_THROTTLED || st == HTB_STATUS_EMPTY);
        if (st == HTB_STATUS_OK) {
          free(p);
        }
        if (n == 0) {
          CHECK_ST(s1st, st);
        }
        break;
      }
    }
  }
  CHECK(refused == 0); /* the same packets were refused on both sides */
  CHECK(sent_many > 100);
  CHECK_ST(htb_qdisc_get_stats(one, &s1), HTB_STATUS_OK);
  CHECK_ST(htb_qdisc_get_stats(many, &s2), HTB_STATUS_OK);
  CHECK(s1.packets == s2.packets && s1.bytes == s2.bytes &&
        s1.drops == s2.drops && s1.qlen == s2.qlen &&
        s1.overlimits == s2.overlimits && s2.drops > 0);
  if (s1.overlimits != s2.overlimits || s1.drops != s2.drops) {
    fprintf(stderr, "overlimits %llu/%llu drops %llu/%llu\n",
            (unsigned long long)s1.overlimits, (unsigned long long)s2.overlimits,
            (unsigned long long)s1.drops, (unsigned long long)s2.drops);
  }
  for (i = 0; i < 4; i++) {
    CHECK_ST(htb_class_get_stats(one, HTB_CLASSID(1, 0x10 + i), &c1),
             HTB_STATUS_OK);
    CHECK_ST(htb_class_get_stats(many, HTB_CLASSID(1, 0x10 + i), &c2),
             HTB_STATUS_OK);
    CHECK(c1.packets == c2.packets && c1.bytes == c2.bytes &&
          c1.drops == c2.drops && c1.qlen == c2.qlen &&
          c1.tokens == c2.tokens && c1.ctokens == c2.ctokens);
  }
  htb_qdisc_free(one, free_pkt, &freed);
  htb_qdisc_free(many, free_pkt, &freed);
  CHECK(freed.packets == 2 * s1.qlen);
}

int main(void) {
  test_version_and_strings();
  test_last_error();
  test_nulls();
  test_zero_lengths_and_parsing();
  test_bad_ids_and_config();
  test_bad_tc_text();
  test_packet_ownership();
  test_functional();
  test_bursts();
  if (failures != 0) {
    fprintf(stderr, "shaper_test: %d of %d checks FAILED\n", failures, checks);
    return 1;
  }
  printf("shaper_test: all %d checks passed\n", checks);
  return 0;
}
