/* The FIB's C ABI tested from C: documented statuses for NULLs, freed
 * (then NULL) handles, zero lengths, bad prefixes, addresses and route
 * types; longest-prefix match with metrics and route types; batch lookups
 * checked against single ones; loading route text (names and a value
 * callback, all or nothing) and a route file.
 *
 * Built by htb-ffi/tests/c_tests.rs with
 *   cc -std=c11 -Wall -Wextra -Werror -pedantic -I include ... libhtb.a
 * and run from the workspace root (under valgrind when it is installed).
 * Exit status 0 = all passed. */

#include "htb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---------------------------------------------------------------- helpers */

static htb_prefix pfx(const char *text) {
  htb_prefix p;
  memset(&p, 0, sizeof p);
  if (htb_prefix_parse(text, strlen(text), &p) != HTB_STATUS_OK) {
    fprintf(stderr, "cannot parse prefix %s: %s\n", text, last_error());
    abort();
  }
  return p;
}

/* The 4 bytes of a dotted quad, network order. */
static void v4(uint8_t out[4], unsigned a, unsigned b, unsigned c, unsigned d) {
  out[0] = (uint8_t)a;
  out[1] = (uint8_t)b;
  out[2] = (uint8_t)c;
  out[3] = (uint8_t)d;
}

static htb_route lookup4(const htb_fib *fib, unsigned a, unsigned b, unsigned c,
                         unsigned d, htb_status *st) {
  uint8_t addr[4];
  htb_route r;
  memset(&r, 0xee, sizeof r); /* untouched on NOT_FOUND */
  v4(addr, a, b, c, d);
  *st = htb_fib_lookup(fib, addr, sizeof addr, &r);
  return r;
}

static int prefix_is(const htb_prefix *p, const char *want) {
  char buf[64];
  size_t n = 0;
  if (htb_prefix_format(p, buf, sizeof buf, &n) != HTB_STATUS_OK) {
    return 0;
  }
  if (strcmp(buf, want) != 0) {
    fprintf(stderr, "  prefix %s, want %s\n", buf, want);
    return 0;
  }
  return 1;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

/* ------------------------------------------------------------------ tests */

static void test_strings(void) {
  for (uint32_t s = HTB_STATUS_NOT_FOUND; s <= HTB_STATUS_PENDING; s++) {
    CHECK(htb_status_str(s) != NULL && strlen(htb_status_str(s)) > 0);
    CHECK(strcmp(htb_status_str(s), "unknown status") != 0);
  }
  CHECK(HTB_STATUS_NOT_FOUND == 17 && HTB_STATUS_EXISTS == 18 &&
        HTB_STATUS_BUFFER_TOO_SMALL == 19 && HTB_STATUS_PENDING == 24);
  CHECK(strcmp(htb_status_str(25), "unknown status") == 0);
}

static void test_nulls_and_freed(void) {
  htb_fib *fib = NULL;
  htb_prefix p = pfx("10.0.0.0/8");
  htb_route r;
  uint8_t a[4] = {10, 0, 0, 1};
  size_t n = 0;
  char buf[16];

  CHECK_ST(htb_fib_new(NULL), HTB_STATUS_NULL_PARAMETER);
  htb_fib_free(NULL); /* no-op */
  CHECK_ST(htb_fib_new(&fib), HTB_STATUS_OK);
  CHECK(fib != NULL);

  CHECK_ST(htb_fib_insert(NULL, &p, 0, HTB_ROUTE_KIND_UNICAST, 1),
           HTB_STATUS_NULL_PARAMETER);
  CHECK(strstr(last_error(), "htb_fib_insert") != NULL);
  CHECK_ST(htb_fib_insert(fib, NULL, 0, HTB_ROUTE_KIND_UNICAST, 1),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_replace(fib, NULL, 0, HTB_ROUTE_KIND_UNICAST, 1),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_remove(fib, NULL, 0), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_remove_prefix(NULL, &p, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_lookup(fib, NULL, 4, &r), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_lookup(fib, a, 4, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_lookup_batch(NULL, a, 4, 1, &r, 1),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_lookup_batch(fib, NULL, 4, 1, &r, 1),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_lookup_batch(fib, a, 4, 1, NULL, 1),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_count(fib, HTB_FAMILY_ANY, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_foreach(fib, HTB_FAMILY_ANY, NULL, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_load(fib, NULL, 0, NULL, NULL, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_load_file(fib, NULL, NULL, NULL, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_name(fib, 0, buf, sizeof buf, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_name(fib, 0, NULL, sizeof buf, &n),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_prefix_parse(NULL, 3, &p), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_prefix_parse("1.2.3.4", 7, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_prefix_format(NULL, buf, sizeof buf, &n),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_prefix_format(&p, NULL, sizeof buf, &n),
           HTB_STATUS_NULL_PARAMETER);

  htb_fib_free(fib);
  fib = NULL; /* freed, then NULL: every call reports it */
  CHECK_ST(htb_fib_lookup(fib, a, 4, &r), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_insert(fib, &p, 0, HTB_ROUTE_KIND_UNICAST, 1),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_count(fib, HTB_FAMILY_ANY, &n), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fib_load(fib, "", 0, NULL, NULL, NULL),
           HTB_STATUS_NULL_PARAMETER);
  htb_fib_free(fib);
}

static void test_prefix_text(void) {
  htb_prefix p;
  char buf[64];
  char tiny[5];
  size_t n = 0;

  CHECK_ST(htb_prefix_parse("10.0.0.0/8", 10, &p), HTB_STATUS_OK);
  CHECK(p.family == HTB_FAMILY_IPV4 && p.len == 8 && p.addr[0] == 10 &&
        p.addr[1] == 0 && p.addr[4] == 0);
  CHECK_ST(htb_prefix_parse(" 192.0.2.7 ", 11, &p), HTB_STATUS_OK);
  CHECK(p.family == HTB_FAMILY_IPV4 && p.len == 32 && p.addr[3] == 7);
  CHECK_ST(htb_prefix_parse("2001:db8::/32", 13, &p), HTB_STATUS_OK);
  CHECK(p.family == HTB_FAMILY_IPV6 && p.len == 32 && p.addr[0] == 0x20 &&
        p.addr[1] == 0x01 && p.addr[2] == 0x0d && p.addr[3] == 0xb8);
  CHECK(prefix_is(&p, "2001:db8::/32"));

  /* Bad text: host bits, lengths, words, nothing at all. */
  memset(&p, 0x55, sizeof p);
  CHECK_ST(htb_prefix_parse("10.0.0.1/8", 10, &p), HTB_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "did you mean 10.0.0.0/8") != NULL);
  CHECK(p.family == 0x55555555u); /* outputs only on success */
  CHECK_ST(htb_prefix_parse("10.0.0.0/33", 11, &p), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_prefix_parse("::/129", 6, &p), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_prefix_parse("bogus", 5, &p), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_prefix_parse("", 0, &p), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_prefix_parse("\xff\xfe", 2, &p), HTB_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "UTF-8") != NULL);

  /* Format: full, cut like snprintf, length only. */
  p = pfx("192.168.0.0/16");
  CHECK_ST(htb_prefix_format(&p, buf, sizeof buf, &n), HTB_STATUS_OK);
  CHECK(strcmp(buf, "192.168.0.0/16") == 0 && n == 14);
  CHECK_ST(htb_prefix_format(&p, tiny, sizeof tiny, &n), HTB_STATUS_OK);
  CHECK(strcmp(tiny, "192.") == 0 && n == 14);
  n = 0;
  CHECK_ST(htb_prefix_format(&p, NULL, 0, &n), HTB_STATUS_OK);
  CHECK(n == 14);
  /* A hand-made struct is checked like text is. */
  p.addr[3] = 1;
  CHECK_ST(htb_prefix_format(&p, buf, sizeof buf, &n),
           HTB_STATUS_INVALID_ARGUMENT);
  p = pfx("10.0.0.0/8");
  p.family = 5;
  CHECK_ST(htb_prefix_format(&p, buf, sizeof buf, &n),
           HTB_STATUS_INVALID_ARGUMENT);
}

static void test_insert_lookup_remove(void) {
  htb_fib *fib = NULL;
  htb_route r;
  htb_status st;
  htb_prefix p;
  size_t n = 0;
  uint8_t a6[16];
  uint8_t bad[5] = {1, 2, 3, 4, 5};

  CHECK_ST(htb_fib_new(&fib), HTB_STATUS_OK);
  /* Empty: nothing matches, and *out is untouched. */
  r = lookup4(fib, 10, 0, 0, 1, &st);
  CHECK(st == HTB_STATUS_NOT_FOUND && r.metric == 0xeeeeeeeeu);

  p = pfx("0.0.0.0/0");
  CHECK_ST(htb_fib_insert(fib, &p, 100, HTB_ROUTE_KIND_UNICAST, 100),
           HTB_STATUS_OK);
  p = pfx("10.0.0.0/8");
  CHECK_ST(htb_fib_insert(fib, &p, 10, HTB_ROUTE_KIND_UNICAST, 1),
           HTB_STATUS_OK);
  CHECK_ST(htb_fib_insert(fib, &p, 5, HTB_ROUTE_KIND_UNICAST, 2),
           HTB_STATUS_OK);
  CHECK_ST(htb_fib_insert(fib, &p, 5, HTB_ROUTE_KIND_UNICAST, 3),
           HTB_STATUS_EXISTS);
  CHECK(strstr(last_error(), "10.0.0.0/8 metric 5 exists") != NULL);
  CHECK_ST(htb_fib_insert(fib, &p, 5, HTB_ROUTE_KIND_BLACKHOLE, 0),
           HTB_STATUS_EXISTS);
  p = pfx("10.1.0.0/16");
  CHECK_ST(htb_fib_insert(fib, &p, 0, HTB_ROUTE_KIND_BLACKHOLE, 99),
           HTB_STATUS_OK);
  /* Bad kinds and hand-made bad prefixes. */
  CHECK_ST(htb_fib_insert(fib, &p, 1, HTB_ROUTE_KIND_NONE, 0),
           HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_fib_insert(fib, &p, 1, 9, 0), HTB_STATUS_INVALID_ARGUMENT);
  p.len = 15;
  p.addr[1] = 1; /* 10.1.0.0/15 has a host bit set */
  CHECK_ST(htb_fib_insert(fib, &p, 1, HTB_ROUTE_KIND_UNICAST, 0),
           HTB_STATUS_INVALID_ARGUMENT);
  p.len = 40;
  CHECK_ST(htb_fib_insert(fib, &p, 1, HTB_ROUTE_KIND_UNICAST, 0),
           HTB_STATUS_INVALID_ARGUMENT);
  p.family = 0;
  CHECK_ST(htb_fib_insert(fib, &p, 1, HTB_ROUTE_KIND_UNICAST, 0),
           HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_fib_count(fib, HTB_FAMILY_IPV4, &n), HTB_STATUS_OK);
  CHECK(n == 4);

  /* The longest prefix wins; within it the lowest metric. */
  r = lookup4(fib, 10, 2, 3, 4, &st);
  CHECK(st == HTB_STATUS_OK && prefix_is(&r.prefix, "10.0.0.0/8") &&
        r.metric == 5 && r.kind == HTB_ROUTE_KIND_UNICAST && r.value == 2);
  /* An error route answers; no fall back to 10/8. Its value reads 0. */
  r = lookup4(fib, 10, 1, 9, 9, &st);
  CHECK(st == HTB_STATUS_OK && prefix_is(&r.prefix, "10.1.0.0/16") &&
        r.kind == HTB_ROUTE_KIND_BLACKHOLE && r.value == 0);
  r = lookup4(fib, 192, 0, 2, 1, &st);
  CHECK(st == HTB_STATUS_OK && r.prefix.len == 0 && r.value == 100);

  /* Replace overwrites (ip route replace); remove takes the metric. */
  p = pfx("10.0.0.0/8");
  CHECK_ST(htb_fib_replace(fib, &p, 5, HTB_ROUTE_KIND_UNICAST, 7),
           HTB_STATUS_OK);
  r = lookup4(fib, 10, 2, 3, 4, &st);
  CHECK(st == HTB_STATUS_OK && r.value == 7);
  CHECK_ST(htb_fib_remove(fib, &p, 5), HTB_STATUS_OK);
  CHECK_ST(htb_fib_remove(fib, &p, 5), HTB_STATUS_NOT_FOUND);
  CHECK(strstr(last_error(), "no route 10.0.0.0/8 metric 5") != NULL);
  r = lookup4(fib, 10, 2, 3, 4, &st);
  CHECK(st == HTB_STATUS_OK && r.metric == 10 && r.value == 1);
  CHECK_ST(htb_fib_remove_prefix(fib, &p, &n), HTB_STATUS_OK);
  CHECK(n == 1);
  CHECK_ST(htb_fib_remove_prefix(fib, &p, &n), HTB_STATUS_OK);
  CHECK(n == 0);
  CHECK_ST(htb_fib_remove_prefix(fib, &p, NULL), HTB_STATUS_OK);
  r = lookup4(fib, 10, 2, 3, 4, &st);
  CHECK(st == HTB_STATUS_OK && r.prefix.len == 0);

  /* Addresses of a wrong length. */
  CHECK_ST(htb_fib_lookup(fib, bad, 5, &r), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_fib_lookup(fib, bad, 0, &r), HTB_STATUS_INVALID_ARGUMENT);

  /* IPv6 is a table of its own. */
  p = pfx("2001:db8::/32");
  CHECK_ST(htb_fib_insert(fib, &p, 1024, HTB_ROUTE_KIND_UNICAST, 66),
           HTB_STATUS_OK);
  p = pfx("2001:db8:1::/48");
  CHECK_ST(htb_fib_insert(fib, &p, 1024, HTB_ROUTE_KIND_PROHIBIT, 0),
           HTB_STATUS_OK);
  memcpy(a6, p.addr, 16);
  a6[15] = 1; /* 2001:db8:1::1 */
  CHECK_ST(htb_fib_lookup(fib, a6, 16, &r), HTB_STATUS_OK);
  CHECK(r.kind == HTB_ROUTE_KIND_PROHIBIT && r.prefix.len == 48 &&
        r.prefix.family == HTB_FAMILY_IPV6);
  a6[5] = 2; /* 2001:db8:2::1 */
  CHECK_ST(htb_fib_lookup(fib, a6, 16, &r), HTB_STATUS_OK);
  CHECK(r.kind == HTB_ROUTE_KIND_UNICAST && r.value == 66 &&
        prefix_is(&r.prefix, "2001:db8::/32"));
  a6[3] = 0xb9; /* 2001:db9:2::1: no IPv6 default */
  CHECK_ST(htb_fib_lookup(fib, a6, 16, &r), HTB_STATUS_NOT_FOUND);
  CHECK_ST(htb_fib_count(fib, HTB_FAMILY_IPV6, &n), HTB_STATUS_OK);
  CHECK(n == 2);
  CHECK_ST(htb_fib_count(fib, HTB_FAMILY_ANY, &n), HTB_STATUS_OK);
  CHECK(n == 4);
  CHECK_ST(htb_fib_count(fib, 7, &n), HTB_STATUS_INVALID_ARGUMENT);
  htb_fib_free(fib);
}

#define NADDR 2000

static void test_batch(void) {
  static uint8_t addrs[NADDR * 4];
  static htb_route out[NADDR];
  htb_fib *fib = NULL;
  htb_status st;
  htb_route one;
  uint8_t a6[2 * 16];
  htb_route o6[2];
  int same = 1;

  CHECK_ST(htb_fib_new(&fib), HTB_STATUS_OK);
  /* 300 random prefixes of lengths 8..30, and no default route. */
  for (int i = 0; i < 300; i++) {
    htb_prefix p;
    uint32_t len = 8 + next_rand() % 23;
    uint32_t a = (next_rand() & 0x3fffffffu) & ~((1u << (32 - len)) - 1u);
    memset(&p, 0, sizeof p);
    p.family = HTB_FAMILY_IPV4;
    p.len = len;
    p.addr[0] = (uint8_t)(a >> 24);
    p.addr[1] = (uint8_t)(a >> 16);
    p.addr[2] = (uint8_t)(a >> 8);
    p.addr[3] = (uint8_t)a;
    st = htb_fib_insert(fib, &p, 0, HTB_ROUTE_KIND_UNICAST, (uint64_t)i);
    CHECK(st == HTB_STATUS_OK || st == HTB_STATUS_EXISTS);
  }
  /* Half of the addresses inside the prefixes' range, half anywhere. */
  for (int i = 0; i < NADDR; i++) {
    uint32_t a = next_rand();
    if (i % 2 == 0) {
      a &= 0x3fffffffu;
    }
    v4(&addrs[i * 4], a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
  }
  CHECK_ST(htb_fib_lookup_batch(fib, addrs, 4, NADDR, out, NADDR),
           HTB_STATUS_OK);
  int found = 0;
  for (int i = 0; i < NADDR; i++) {
    st = htb_fib_lookup(fib, &addrs[i * 4], 4, &one);
    if (st == HTB_STATUS_OK) {
      found++;
      same &= memcmp(&one, &out[i], sizeof one) == 0;
    } else {
      same &= st == HTB_STATUS_NOT_FOUND &&
              out[i].kind == HTB_ROUTE_KIND_NONE && out[i].prefix.len == 0 &&
              out[i].value == 0;
    }
  }
  CHECK(same);
  CHECK(found > NADDR / 10 && found < NADDR); /* both cases exercised */

  /* Zero addresses (NULL allowed), short output, bad widths. */
  CHECK_ST(htb_fib_lookup_batch(fib, NULL, 4, 0, NULL, 0), HTB_STATUS_OK);
  CHECK_ST(htb_fib_lookup_batch(fib, addrs, 4, 10, out, 9),
           HTB_STATUS_BUFFER_TOO_SMALL);
  CHECK_ST(htb_fib_lookup_batch(fib, addrs, 8, 10, out, 10),
           HTB_STATUS_INVALID_ARGUMENT);

  /* IPv6 batch. */
  htb_prefix p = pfx("2001:db8::/32");
  CHECK_ST(htb_fib_insert(fib, &p, 1, HTB_ROUTE_KIND_UNICAST, 9),
           HTB_STATUS_OK);
  memset(a6, 0, sizeof a6);
  memcpy(a6, p.addr, 16);
  a6[15] = 1;
  a6[16] = 0xfe;
  a6[17] = 0x80;
  CHECK_ST(htb_fib_lookup_batch(fib, a6, 16, 2, o6, 2), HTB_STATUS_OK);
  CHECK(o6[0].kind == HTB_ROUTE_KIND_UNICAST && o6[0].value == 9);
  CHECK(o6[1].kind == HTB_ROUTE_KIND_NONE);
  htb_fib_free(fib);
}

typedef struct visit {
  int n;
  int stop_at;
  char seen[8][48];
} visit;

static int32_t visit_route(void *user, const htb_route *r) {
  visit *v = (visit *)user;
  size_t n = 0;
  if (v->n < 8) {
    htb_prefix_format(&r->prefix, v->seen[v->n], sizeof v->seen[0], &n);
  }
  v->n++;
  return v->n == v->stop_at;
}

static void test_foreach(void) {
  htb_fib *fib = NULL;
  visit v;
  const char *text = "10.0.0.0/24 a\n9.0.0.0/8 b\n10.0.0.0/8 c\n"
                     "10.0.0.0/8 d 7\n::/0 e\n";
  CHECK_ST(htb_fib_new(&fib), HTB_STATUS_OK);
  CHECK_ST(htb_fib_load(fib, text, strlen(text), NULL, NULL, NULL),
           HTB_STATUS_OK);
  memset(&v, 0, sizeof v);
  CHECK_ST(htb_fib_foreach(fib, HTB_FAMILY_ANY, visit_route, &v), HTB_STATUS_OK);
  CHECK(v.n == 5);
  CHECK(strcmp(v.seen[0], "9.0.0.0/8") == 0);
  CHECK(strcmp(v.seen[1], "10.0.0.0/8") == 0);
  CHECK(strcmp(v.seen[2], "10.0.0.0/8") == 0);
  CHECK(strcmp(v.seen[3], "10.0.0.0/24") == 0);
  CHECK(strcmp(v.seen[4], "::/0") == 0);
  memset(&v, 0, sizeof v);
  v.stop_at = 2;
  CHECK_ST(htb_fib_foreach(fib, HTB_FAMILY_ANY, visit_route, &v), HTB_STATUS_OK);
  CHECK(v.n == 2);
  memset(&v, 0, sizeof v);
  CHECK_ST(htb_fib_foreach(fib, HTB_FAMILY_IPV6, visit_route, &v), HTB_STATUS_OK);
  CHECK(v.n == 1);
  CHECK_ST(htb_fib_foreach(fib, 5, visit_route, &v), HTB_STATUS_INVALID_ARGUMENT);
  htb_fib_free(fib);
}

/* htb_fib_value_fn: decimal words only. */
static int32_t decimal_value(void *user, const char *word, size_t len,
                             uint64_t *value) {
  uint64_t v = 0;
  (void)user;
  if (len == 0 || strlen(word) != len) {
    return 1;
  }
  for (size_t i = 0; i < len; i++) {
    if (word[i] < '0' || word[i] > '9') {
      return 1;
    }
    v = v * 10 + (uint64_t)(word[i] - '0');
  }
  *value = v;
  return 0;
}

static void test_load(void) {
  htb_fib *fib = NULL;
  htb_status st;
  htb_route r;
  size_t added = 0;
  size_t count = 0;
  char name[32];
  size_t n = 0;
  uint8_t a6[16];
  const char *text =
      "# comment\n"
      "10.0.0.0/8 eth1\n"
      "192.168.0.0/16 eth2 5\n"
      "blackhole 10.9.0.0/16\n"
      "\n"
      "2001:db8::/32 eth1\n"
      "default via 192.0.2.1 dev eth0 proto dhcp metric 100\n";

  CHECK_ST(htb_fib_new(&fib), HTB_STATUS_OK);
  CHECK_ST(htb_fib_load(fib, text, strlen(text), NULL, NULL, &added),
           HTB_STATUS_OK);
  CHECK(added == 5);
  r = lookup4(fib, 10, 1, 2, 3, &st);
  CHECK(st == HTB_STATUS_OK && r.kind == HTB_ROUTE_KIND_UNICAST);
  CHECK_ST(htb_fib_name(fib, r.value, name, sizeof name, &n), HTB_STATUS_OK);
  CHECK(strcmp(name, "eth1") == 0 && n == 4);
  r = lookup4(fib, 8, 8, 8, 8, &st);
  CHECK(st == HTB_STATUS_OK && r.metric == 100 && r.prefix.len == 0);
  CHECK_ST(htb_fib_name(fib, r.value, name, sizeof name, &n), HTB_STATUS_OK);
  CHECK(strcmp(name, "192.0.2.1@eth0") == 0);
  r = lookup4(fib, 10, 9, 0, 1, &st);
  CHECK(st == HTB_STATUS_OK && r.kind == HTB_ROUTE_KIND_BLACKHOLE);
  /* The same word is the same value in both families. */
  memset(a6, 0, sizeof a6);
  a6[0] = 0x20;
  a6[1] = 0x01;
  a6[2] = 0x0d;
  a6[3] = 0xb8;
  CHECK_ST(htb_fib_lookup(fib, a6, 16, &r), HTB_STATUS_OK);
  CHECK_ST(htb_fib_name(fib, r.value, name, sizeof name, &n), HTB_STATUS_OK);
  CHECK(strcmp(name, "eth1") == 0);
  CHECK_ST(htb_fib_name(fib, 3, name, sizeof name, &n), HTB_STATUS_NOT_FOUND);
  n = 0;
  CHECK_ST(htb_fib_name(fib, 0, NULL, 0, &n), HTB_STATUS_OK);
  CHECK(n == 4);

  /* All or nothing: a bad third line changes nothing. */
  const char *bad = "172.16.0.0/12 x\n172.17.0.0/16 y\n10.0.0.1/8 z\n";
  added = 77;
  CHECK_ST(htb_fib_load(fib, bad, strlen(bad), NULL, NULL, &added),
           HTB_STATUS_PARSE_ERROR);
  CHECK(strstr(last_error(), "<text>:3: invalid prefix 10.0.0.1/8") != NULL);
  CHECK(added == 77);
  CHECK_ST(htb_fib_count(fib, HTB_FAMILY_ANY, &count), HTB_STATUS_OK);
  CHECK(count == 5);
  r = lookup4(fib, 172, 16, 0, 1, &st);
  CHECK(st == HTB_STATUS_OK && r.prefix.len == 0); /* still the default */
  CHECK_ST(htb_fib_name(fib, 3, name, sizeof name, &n), HTB_STATUS_NOT_FOUND);
  /* A route already in the fib. */
  const char *dup = "172.16.0.0/12 x\n10.0.0.0/8 eth9\n";
  CHECK_ST(htb_fib_load(fib, dup, strlen(dup), NULL, NULL, NULL),
           HTB_STATUS_EXISTS);
  CHECK(strstr(last_error(), "<text>:2:") != NULL);
  CHECK_ST(htb_fib_count(fib, HTB_FAMILY_ANY, &count), HTB_STATUS_OK);
  CHECK(count == 5);
  /* Words the kernel refuses. */
  const char *local = "local 10.0.0.1 dev lo\n";
  CHECK_ST(htb_fib_load(fib, local, strlen(local), NULL, NULL, NULL),
           HTB_STATUS_PARSE_ERROR);
  /* Zero length and non-UTF-8 text. */
  CHECK_ST(htb_fib_load(fib, "", 0, NULL, NULL, &added), HTB_STATUS_OK);
  CHECK(added == 0);
  CHECK_ST(htb_fib_load(fib, "\xc3\x28", 2, NULL, NULL, NULL),
           HTB_STATUS_INVALID_ARGUMENT);
  htb_fib_free(fib);

  /* A value callback: numbers go in as they are, other words refused. */
  CHECK_ST(htb_fib_new(&fib), HTB_STATUS_OK);
  const char *nums = "10.0.0.0/8 42\n2001:db8::/32 7 3\n";
  CHECK_ST(htb_fib_load(fib, nums, strlen(nums), decimal_value, NULL, &added),
           HTB_STATUS_OK);
  CHECK(added == 2);
  r = lookup4(fib, 10, 0, 0, 1, &st);
  CHECK(st == HTB_STATUS_OK && r.value == 42);
  CHECK_ST(htb_fib_name(fib, 42, name, sizeof name, &n), HTB_STATUS_NOT_FOUND);
  const char *words = "11.0.0.0/8 51\n12.0.0.0/8 eth0\n";
  CHECK_ST(htb_fib_load(fib, words, strlen(words), decimal_value, NULL, NULL),
           HTB_STATUS_PARSE_ERROR);
  CHECK(strstr(last_error(), "<text>:2: value \"eth0\" refused") != NULL);
  r = lookup4(fib, 11, 0, 0, 1, &st);
  CHECK(st == HTB_STATUS_NOT_FOUND);
  htb_fib_free(fib);
}

static void test_load_file(void) {
  htb_fib *fib = NULL;
  htb_status st;
  htb_route r;
  size_t added = 0;
  char name[32];
  size_t n = 0;

  CHECK_ST(htb_fib_new(&fib), HTB_STATUS_OK);
  CHECK_ST(htb_fib_load_file(fib, "examples/c/routes.txt", NULL, NULL, &added),
           HTB_STATUS_OK);
  CHECK(added == 11);
  r = lookup4(fib, 10, 1, 2, 3, &st);
  CHECK(st == HTB_STATUS_OK && r.prefix.len == 16 && r.metric == 10);
  CHECK_ST(htb_fib_name(fib, r.value, name, sizeof name, &n), HTB_STATUS_OK);
  CHECK(strcmp(name, "lab") == 0);
  r = lookup4(fib, 172, 20, 0, 1, &st);
  CHECK(st == HTB_STATUS_OK && r.kind == HTB_ROUTE_KIND_UNREACHABLE);
  CHECK_ST(htb_fib_load_file(fib, "no/such/routes.txt", NULL, NULL, &added),
           HTB_STATUS_IO_ERROR);
  CHECK(strstr(last_error(), "no/such/routes.txt") != NULL);
  /* Loading the same file again: every route exists already. */
  CHECK_ST(htb_fib_load_file(fib, "examples/c/routes.txt", NULL, NULL, NULL),
           HTB_STATUS_EXISTS);
  CHECK(strstr(last_error(), "examples/c/routes.txt:6:") != NULL);
  htb_fib_free(fib);
}

int main(void) {
  test_strings();
  test_nulls_and_freed();
  test_prefix_text();
  test_insert_lookup_remove();
  test_batch();
  test_foreach();
  test_load();
  test_load_file();
  if (failures != 0) {
    fprintf(stderr, "fib_test: %d of %d checks FAILED\n", failures, checks);
    return 1;
  }
  printf("fib_test: all %d checks passed\n", checks);
  return 0;
}
