/* Reassembly and fragmentation through the C ABI, tested from C: documented
 * statuses for NULLs, freed (then NULL) handles, zero lengths and bad
 * packets; a 3-fragment IPv4 datagram built here reassembled in any order
 * into a caller buffer, a too-small buffer (the datagram waits, nothing is
 * lost), owned buffers; duplicates, overlaps, expiry events with the ICMP
 * quote, the IPv6 Parameter Problem; htb_fragment / htb_fragment_each
 * round trips through the reassembler for IPv4 and IPv6, DF and MTU errors,
 * sizing calls.
 *
 * Built by htb-ffi/tests/c_tests.rs with
 *   cc -std=c11 -Wall -Wextra -Werror -pedantic -I include ... libhtb.a
 * and run (under valgrind when it is installed). Exit status 0 = all passed. */

#include "htb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define SEC 1000000000ull
#define MAXPKT 65536

/* ------------------------------------------------------- packet building */

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

/* The Internet checksum (RFC 1071) of `len` bytes. */
static uint16_t csum(const uint8_t *p, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) {
    sum += (uint32_t)get16(p + i);
  }
  if (len & 1) {
    sum += (uint32_t)p[len - 1] << 8;
  }
  while (sum > 0xffff) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return (uint16_t)~sum;
}

#define IP_MF 0x2000u
#define IP_DF 0x4000u

/* A 20-byte IPv4 header at `p` for `data_len` bytes of data; `frag` is the
 * flags-and-offset field (offset in 8-byte units). */
static void ip4_header(uint8_t *p, size_t data_len, uint16_t id, uint16_t frag,
                       uint8_t proto) {
  memset(p, 0, 20);
  p[0] = 0x45;
  put16(p + 2, (uint16_t)(20 + data_len));
  put16(p + 4, id);
  put16(p + 6, frag);
  p[8] = 64;
  p[9] = proto;
  p[12] = 192, p[13] = 0, p[14] = 2, p[15] = 1;    /* 192.0.2.1 */
  p[16] = 198, p[17] = 51, p[18] = 100, p[19] = 2; /* 198.51.100.2 */
  put16(p + 10, csum(p, 20));
}

static uint8_t data_byte(size_t i) { return (uint8_t)(i * 7u + 3u); }

/* The whole datagram: header + `data_len` bytes of pattern. */
static size_t ip4_datagram(uint8_t *p, size_t data_len, uint16_t id,
                           uint16_t flags) {
  ip4_header(p, data_len, id, flags, 17);
  for (size_t i = 0; i < data_len; i++) {
    p[20 + i] = data_byte(i);
  }
  return 20 + data_len;
}

/* Fragment of the datagram's data [off, off+len) with MF as given. */
static size_t ip4_frag(uint8_t *p, size_t off, size_t len, int mf, uint16_t id) {
  ip4_header(p, len, id, (uint16_t)((mf ? IP_MF : 0) | (off / 8)), 17);
  for (size_t i = 0; i < len; i++) {
    p[20 + i] = data_byte(off + i);
  }
  return 20 + len;
}

/* An IPv6 UDP datagram: 40-byte header + `data_len` bytes. */
static size_t ip6_datagram(uint8_t *p, size_t data_len) {
  memset(p, 0, 40);
  p[0] = 0x60;
  put16(p + 4, (uint16_t)data_len);
  p[6] = 17; /* next header: UDP */
  p[7] = 64;
  p[8] = 0x20, p[9] = 0x01, p[10] = 0x0d, p[11] = 0xb8, p[23] = 1; /* src */
  p[24] = 0x20, p[25] = 0x01, p[26] = 0x0d, p[27] = 0xb8, p[39] = 2;
  for (size_t i = 0; i < data_len; i++) {
    p[40 + i] = data_byte(i);
  }
  return 40 + data_len;
}

/* An IPv6 fragment: header, fragment header (id 0x01020304), `len` bytes
 * of the datagram's data at `off`. */
static size_t ip6_frag(uint8_t *p, size_t off, size_t len, int mf) {
  ip6_datagram(p, 0);
  put16(p + 4, (uint16_t)(8 + len));
  p[6] = 44; /* next header: Fragment */
  p[40] = 17;
  p[41] = 0;
  put16(p + 42, (uint16_t)(off | (mf ? 1u : 0u)));
  p[44] = 1, p[45] = 2, p[46] = 3, p[47] = 4;
  for (size_t i = 0; i < len; i++) {
    p[48 + i] = data_byte(off + i);
  }
  return 48 + len;
}

/* ------------------------------------------------------------------ tests */

static void test_strings_and_config(void) {
  htb_reasm_config c;
  uint32_t pol = 99;
  CHECK_ST(htb_reasm_config_default(&c), HTB_STATUS_OK);
  CHECK(c.policy == HTB_REASM_POLICY_LINUX && c.max_dist == 64 &&
        c.high_thresh == 4u * 1024 * 1024 && c.max_datagram == 65535 &&
        c.timeout_v4 == 30 * SEC && c.timeout_v6 == 60 * SEC);
  CHECK_ST(htb_reasm_config_default(NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_policy_parse("bsd-right", 9, &pol), HTB_STATUS_OK);
  CHECK(pol == HTB_REASM_POLICY_BSD_RIGHT);
  CHECK_ST(htb_reasm_policy_parse("LINUX_LEGACY", 12, &pol), HTB_STATUS_OK);
  CHECK(pol == HTB_REASM_POLICY_LINUX_LEGACY);
  CHECK_ST(htb_reasm_policy_parse("nope", 4, &pol), HTB_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "unknown reassembly policy") != NULL);
  CHECK_ST(htb_reasm_policy_parse("", 0, &pol), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_reasm_policy_parse(NULL, 0, &pol), HTB_STATUS_NULL_PARAMETER);
  CHECK(pol == HTB_REASM_POLICY_LINUX_LEGACY); /* untouched on failure */
  for (uint32_t p = 0; p <= HTB_REASM_POLICY_SOLARIS; p++) {
    const char *name = htb_reasm_policy_str(p);
    uint32_t back = 99;
    CHECK(htb_reasm_policy_parse(name, strlen(name), &back) == HTB_STATUS_OK &&
          back == p);
  }
  CHECK(strcmp(htb_reasm_policy_str(8), "unknown policy") == 0);
  CHECK(strcmp(htb_frag_drop_str(HTB_FRAG_DROP_OVERLAP),
               "overlapping fragment") == 0);
  CHECK(strcmp(htb_frag_drop_str(200), "unknown drop reason") == 0);
}

static void test_nulls_and_freed(void) {
  htb_reasm *r = NULL;
  htb_reasm_config c;
  htb_reasm_result res;
  htb_reasm_stats s;
  htb_buffer *b = NULL;
  uint8_t pkt[64];
  uint8_t out[64];
  size_t n = 0;
  uint64_t t = 0;

  ip4_datagram(pkt, 20, 1, 0);
  CHECK_ST(htb_reasm_new(NULL, NULL), HTB_STATUS_NULL_PARAMETER);
  htb_reasm_free(NULL); /* no-op */
  htb_reasm_config_default(&c);
  c.policy = 8;
  CHECK_ST(htb_reasm_new(&c, &r), HTB_STATUS_INVALID_ARGUMENT);
  CHECK(r == NULL);
  c.policy = HTB_REASM_POLICY_WINDOWS;
  CHECK_ST(htb_reasm_new(&c, &r), HTB_STATUS_OK);
  CHECK_ST(htb_reasm_get_config(r, &c), HTB_STATUS_OK);
  CHECK(c.policy == HTB_REASM_POLICY_WINDOWS);
  htb_reasm_free(r);
  r = NULL;
  CHECK_ST(htb_reasm_new(NULL, &r), HTB_STATUS_OK);

  CHECK_ST(htb_reasm_push(NULL, pkt, 40, 0, 0, &res, out, sizeof out),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_push(r, NULL, 40, 0, 0, &res, out, sizeof out),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_push(r, pkt, 40, 0, 0, NULL, out, sizeof out),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_push(r, pkt, 40, 0, 0, &res, NULL, sizeof out),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_push_owned(r, pkt, 40, 0, 0, &res, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_take(r, out, sizeof out, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_take(r, NULL, sizeof out, &n), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_take_owned(r, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_expire(NULL, 0, NULL, NULL, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_next_expiry(r, NULL), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_get_stats(r, HTB_FAMILY_ANY, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_get_stats(r, 5, &s), HTB_STATUS_INVALID_ARGUMENT);
  CHECK_ST(htb_reasm_get_usage(NULL, &n, &n), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_get_usage(r, NULL, NULL), HTB_STATUS_OK);
  CHECK(htb_buffer_data(NULL) == NULL);
  CHECK(htb_buffer_len(NULL) == 0);
  htb_buffer_free(NULL);
  /* Nothing waits, nothing is held. */
  CHECK_ST(htb_reasm_take(r, out, sizeof out, &n), HTB_STATUS_NOT_FOUND);
  CHECK_ST(htb_reasm_take_owned(r, &b), HTB_STATUS_NOT_FOUND);
  CHECK(b == NULL);
  CHECK_ST(htb_reasm_next_expiry(r, &t), HTB_STATUS_EMPTY);

  htb_reasm_free(r);
  r = NULL; /* freed, then NULL */
  CHECK_ST(htb_reasm_push(r, pkt, 40, 0, 0, &res, out, sizeof out),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_expire(r, 0, NULL, NULL, &n), HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_reasm_get_stats(r, HTB_FAMILY_ANY, &s),
           HTB_STATUS_NULL_PARAMETER);
  htb_reasm_free(r);
}

static void test_bad_packets(void) {
  htb_reasm *r = NULL;
  htb_reasm_result res;
  htb_reasm_stats s;
  uint8_t pkt[64];
  uint8_t out[64];

  CHECK_ST(htb_reasm_new(NULL, &r), HTB_STATUS_OK);
  memset(&res, 0x77, sizeof res);
  CHECK_ST(htb_reasm_push(r, pkt, 0, 0, 0, &res, out, sizeof out),
           HTB_STATUS_MALFORMED);
  CHECK(res.outcome == 0x77777777u); /* untouched */
  memset(pkt, 0, sizeof pkt);
  pkt[0] = 0x55; /* version 5 */
  CHECK_ST(htb_reasm_push(r, pkt, 40, 0, 0, &res, out, sizeof out),
           HTB_STATUS_MALFORMED);
  CHECK(strstr(last_error(), "htb_reasm_push: malformed packet") != NULL);
  ip4_frag(pkt, 0, 16, 1, 9);
  CHECK_ST(htb_reasm_push(r, pkt, 12, 0, 0, &res, out, sizeof out),
           HTB_STATUS_MALFORMED); /* shorter than its header */
  pkt[10] ^= 0xff;                /* checksum broken */
  CHECK_ST(htb_reasm_push(r, pkt, 36, 0, 0, &res, out, sizeof out),
           HTB_STATUS_MALFORMED);
  CHECK_ST(htb_reasm_get_stats(r, HTB_FAMILY_ANY, &s), HTB_STATUS_OK);
  CHECK(s.reasm_reqds == 0 && s.reasm_oks == 0);
  htb_reasm_free(r);
}

static void test_three_fragments(void) {
  static uint8_t orig[4096], f[3][2048], out[4096];
  size_t flen[3];
  htb_reasm *r = NULL;
  htb_reasm_result res;
  htb_reasm_stats s;
  size_t mem = 0, queues = 0;
  uint64_t t = 0;
  /* Every order of the three fragments gives the same datagram. */
  static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                   {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  size_t olen = ip4_datagram(orig, 3000, 0x1234, 0);

  flen[0] = ip4_frag(f[0], 0, 1000, 1, 0x1234);
  flen[1] = ip4_frag(f[1], 1000, 1000, 1, 0x1234);
  flen[2] = ip4_frag(f[2], 2000, 1000, 0, 0x1234);
  CHECK_ST(htb_reasm_new(NULL, &r), HTB_STATUS_OK);

  /* A whole datagram is not a fragment: nothing copied. */
  CHECK_ST(htb_reasm_push(r, orig, olen, 0, 0, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK(res.outcome == HTB_REASM_OUTCOME_NOT_FRAGMENT && res.len == 0);

  for (int o = 0; o < 6; o++) {
    uint64_t now = (uint64_t)o * SEC;
    memset(out, 0, sizeof out);
    for (int k = 0; k < 3; k++) {
      int i = orders[o][k];
      CHECK_ST(htb_reasm_push(r, f[i], flen[i], 0, now, &res, out, sizeof out),
               HTB_STATUS_OK);
      if (k < 2) {
        CHECK(res.outcome == HTB_REASM_OUTCOME_QUEUED);
        if (k == 0) {
          CHECK_ST(htb_reasm_next_expiry(r, &t), HTB_STATUS_OK);
          CHECK(t == now + 30 * SEC);
          CHECK_ST(htb_reasm_get_usage(r, &mem, &queues), HTB_STATUS_OK);
          CHECK(queues == 1 && mem >= 1000);
        }
      } else {
        CHECK(res.outcome == HTB_REASM_OUTCOME_COMPLETE);
        CHECK(res.len == olen);
        CHECK(memcmp(out, orig, olen) == 0);
      }
    }
    CHECK_ST(htb_reasm_get_usage(r, &mem, &queues), HTB_STATUS_OK);
    CHECK(queues == 0 && mem == 0);
    CHECK_ST(htb_reasm_next_expiry(r, &t), HTB_STATUS_EMPTY);
  }
  /* The reassembled header is valid and says "not a fragment". */
  CHECK(csum(out, 20) == 0 && get16(out + 6) == 0 && get16(out + 2) == 3020);
  CHECK_ST(htb_reasm_get_stats(r, HTB_FAMILY_ANY, &s), HTB_STATUS_OK);
  CHECK(s.reasm_reqds == 18 && s.reasm_oks == 6 && s.reasm_fails == 0);
  CHECK_ST(htb_reasm_get_stats(r, HTB_FAMILY_IPV6, &s), HTB_STATUS_OK);
  CHECK(s.reasm_reqds == 0);

  /* Different contexts never meet: no datagram completes. */
  CHECK_ST(htb_reasm_push(r, f[0], flen[0], 1, 0, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, f[1], flen[1], 2, 0, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, f[2], flen[2], 1, 0, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK(res.outcome == HTB_REASM_OUTCOME_QUEUED);
  CHECK_ST(htb_reasm_get_usage(r, &mem, &queues), HTB_STATUS_OK);
  CHECK(queues == 2);
  htb_reasm_free(r); /* frees the held fragments (valgrind checks) */
}

static void test_small_buffer_and_owned(void) {
  static uint8_t orig[4096], f[3][2048], out[4096];
  size_t flen[3];
  htb_reasm *r = NULL;
  htb_reasm_result res;
  htb_buffer *b = NULL;
  size_t n = 0;
  size_t olen = ip4_datagram(orig, 3000, 77, 0);

  flen[0] = ip4_frag(f[0], 0, 1000, 1, 77);
  flen[1] = ip4_frag(f[1], 1000, 1000, 1, 77);
  flen[2] = ip4_frag(f[2], 2000, 1000, 0, 77);
  CHECK_ST(htb_reasm_new(NULL, &r), HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, f[0], flen[0], 0, 0, &res, NULL, 0), HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, f[1], flen[1], 0, 0, &res, NULL, 0), HTB_STATUS_OK);
  /* The buffer is too small: the size needed, and the datagram waits. */
  memset(&res, 0, sizeof res);
  CHECK_ST(htb_reasm_push(r, f[2], flen[2], 0, 0, &res, out, 100),
           HTB_STATUS_BUFFER_TOO_SMALL);
  CHECK(res.outcome == HTB_REASM_OUTCOME_COMPLETE && res.len == olen);
  /* While it waits, pushes are refused and change nothing. */
  CHECK_ST(htb_reasm_push(r, f[0], flen[0], 0, 0, &res, out, sizeof out),
           HTB_STATUS_PENDING);
  CHECK_ST(htb_reasm_take(r, out, 1000, &n), HTB_STATUS_BUFFER_TOO_SMALL);
  CHECK(n == olen);
  n = 0;
  CHECK_ST(htb_reasm_take(r, out, sizeof out, &n), HTB_STATUS_OK);
  CHECK(n == olen && memcmp(out, orig, olen) == 0);
  CHECK_ST(htb_reasm_take(r, out, sizeof out, &n), HTB_STATUS_NOT_FOUND);

  /* Again, taken as an owned buffer. */
  CHECK_ST(htb_reasm_push(r, f[0], flen[0], 0, 0, &res, NULL, 0), HTB_STATUS_OK);
  CHECK(res.outcome == HTB_REASM_OUTCOME_QUEUED); /* not refused: nothing waits */
  CHECK_ST(htb_reasm_push(r, f[1], flen[1], 0, 0, &res, NULL, 0), HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, f[2], flen[2], 0, 0, &res, NULL, 0),
           HTB_STATUS_BUFFER_TOO_SMALL);
  CHECK_ST(htb_reasm_take_owned(r, &b), HTB_STATUS_OK);
  CHECK(b != NULL && htb_buffer_len(b) == olen &&
        memcmp(htb_buffer_data(b), orig, olen) == 0);
  htb_buffer_free(b);
  b = NULL;

  /* push_owned: NULL until complete, then a buffer of the datagram. */
  b = (htb_buffer *)&n; /* any non-NULL value: it must be overwritten */
  CHECK_ST(htb_reasm_push_owned(r, f[2], flen[2], 0, 0, &res, &b), HTB_STATUS_OK);
  CHECK(res.outcome == HTB_REASM_OUTCOME_QUEUED && b == NULL);
  CHECK_ST(htb_reasm_push_owned(r, f[0], flen[0], 0, 0, &res, &b), HTB_STATUS_OK);
  CHECK(b == NULL);
  CHECK_ST(htb_reasm_push_owned(r, f[1], flen[1], 0, 0, &res, &b), HTB_STATUS_OK);
  CHECK(res.outcome == HTB_REASM_OUTCOME_COMPLETE && res.len == olen);
  CHECK(b != NULL && htb_buffer_len(b) == olen &&
        memcmp(htb_buffer_data(b), orig, olen) == 0);
  /* A leftover datagram is freed with the table (valgrind checks). */
  CHECK_ST(htb_reasm_push(r, f[0], flen[0], 0, 0, &res, NULL, 0), HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, f[1], flen[1], 0, 0, &res, NULL, 0), HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, f[2], flen[2], 0, 0, &res, NULL, 0),
           HTB_STATUS_BUFFER_TOO_SMALL);
  htb_reasm_free(r);
  htb_buffer_free(b); /* outlives its reassembler */
}

static void test_duplicate_and_overlap(void) {
  static uint8_t f[4][2048], out[4096];
  size_t flen[4];
  htb_reasm *r = NULL;
  htb_reasm_result res;
  htb_reasm_stats s;
  size_t queues = 9;

  flen[0] = ip4_frag(f[0], 0, 1000, 1, 5);
  flen[1] = ip4_frag(f[1], 1000, 1000, 0, 5);
  flen[2] = ip4_frag(f[2], 504, 1000, 1, 5); /* overlaps both */
  CHECK_ST(htb_reasm_new(NULL, &r), HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, f[0], flen[0], 0, 0, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, f[0], flen[0], 0, 0, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK(res.outcome == HTB_REASM_OUTCOME_DROPPED &&
        res.drop_reason == HTB_FRAG_DROP_DUPLICATE);
  CHECK_ST(htb_reasm_push(r, f[2], flen[2], 0, 0, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK(res.outcome == HTB_REASM_OUTCOME_DROPPED &&
        res.drop_reason == HTB_FRAG_DROP_OVERLAP);
  CHECK_ST(htb_reasm_get_usage(r, NULL, &queues), HTB_STATUS_OK);
  CHECK(queues == 0); /* Linux: the whole datagram is discarded */
  /* The last fragment now starts a new queue; the datagram never completes. */
  CHECK_ST(htb_reasm_push(r, f[1], flen[1], 0, 0, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK(res.outcome == HTB_REASM_OUTCOME_QUEUED);
  CHECK_ST(htb_reasm_get_stats(r, HTB_FAMILY_IPV4, &s), HTB_STATUS_OK);
  CHECK(s.reasm_overlaps == 1 && s.reasm_oks == 0 && s.reasm_fails >= 1);
  htb_reasm_free(r);
}

typedef struct seen {
  int n;
  htb_reasm_event ev[4];
  uint8_t quote[4][1280];
} seen;

static void on_event(void *user, const htb_reasm_event *ev) {
  seen *s = (seen *)user;
  if (s->n < 4) {
    s->ev[s->n] = *ev;
    if (ev->quote != NULL && ev->quote_len <= sizeof s->quote[0]) {
      memcpy(s->quote[s->n], ev->quote, ev->quote_len);
    }
  }
  s->n++;
}

static void test_expire(void) {
  static uint8_t a0[2048], b1[2048], c0[2048], out[4096];
  size_t la, lb, lc;
  htb_reasm *r = NULL;
  htb_reasm_result res;
  htb_reasm_stats s;
  seen sn;
  size_t count = 99;
  uint64_t t = 0;

  la = ip4_frag(a0, 0, 1000, 1, 100);    /* has the offset-0 fragment */
  lb = ip4_frag(b1, 1000, 1000, 0, 200); /* misses it */
  lc = ip4_frag(c0, 0, 1000, 1, 300);    /* a later one */
  CHECK_ST(htb_reasm_new(NULL, &r), HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, a0, la, 7, 1 * SEC, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, b1, lb, 8, 2 * SEC, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, c0, lc, 9, 20 * SEC, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK_ST(htb_reasm_next_expiry(r, &t), HTB_STATUS_OK);
  CHECK(t == 31 * SEC);

  memset(&sn, 0, sizeof sn);
  CHECK_ST(htb_reasm_expire(r, 30 * SEC, on_event, &sn, &count), HTB_STATUS_OK);
  CHECK(count == 0 && sn.n == 0);
  CHECK_ST(htb_reasm_expire(r, 40 * SEC, on_event, &sn, &count), HTB_STATUS_OK);
  CHECK(count == 2 && sn.n == 2);
  /* Oldest first; ICMP only where the first fragment arrived. */
  CHECK(sn.ev[0].kind == HTB_REASM_EVENT_KIND_TIMEOUT &&
        sn.ev[0].family == HTB_FAMILY_IPV4 && sn.ev[0].id == 100 &&
        sn.ev[0].proto == 17 && sn.ev[0].context == 7);
  CHECK(memcmp(sn.ev[0].src, a0 + 12, 4) == 0 &&
        memcmp(sn.ev[0].dst, a0 + 16, 4) == 0);
  /* The kernel quotes the whole first fragment, up to 548 bytes (IPv4). */
  CHECK(sn.ev[0].send_icmp && sn.ev[0].quote_len == 548 &&
        memcmp(sn.quote[0], a0, 548) == 0);
  CHECK(sn.ev[1].id == 200 && sn.ev[1].context == 8 && !sn.ev[1].send_icmp &&
        sn.ev[1].quote == NULL && sn.ev[1].quote_len == 0);
  CHECK_ST(htb_reasm_next_expiry(r, &t), HTB_STATUS_OK);
  CHECK(t == 50 * SEC);
  /* Without a callback the events are counted. */
  CHECK_ST(htb_reasm_expire(r, 60 * SEC, NULL, NULL, &count), HTB_STATUS_OK);
  CHECK(count == 1);
  CHECK_ST(htb_reasm_expire(r, 70 * SEC, NULL, NULL, NULL), HTB_STATUS_OK);
  CHECK_ST(htb_reasm_get_stats(r, HTB_FAMILY_ANY, &s), HTB_STATUS_OK);
  CHECK(s.reasm_timeout == 3 && s.reasm_fails == 3 && s.reasm_reqds == 3);
  htb_reasm_free(r);
}

static void test_ipv6_param_problem(void) {
  static uint8_t f[2048], out[4096];
  htb_reasm *r = NULL;
  htb_reasm_result res;
  size_t len;

  CHECK_ST(htb_reasm_new(NULL, &r), HTB_STATUS_OK);
  /* A non-last fragment whose length is not a multiple of 8. */
  len = ip6_frag(f, 0, 1001, 1);
  memset(&res, 0, sizeof res);
  CHECK_ST(htb_reasm_push(r, f, len, 0, 0, &res, out, sizeof out),
           HTB_STATUS_PARAM_PROBLEM);
  CHECK(res.outcome == HTB_REASM_OUTCOME_PARAM_PROBLEM && res.icmp_code == 0 &&
        res.icmp_pointer == 4);
  CHECK(strstr(last_error(), "code 0, pointer 4") != NULL);
  htb_reasm_free(r);
}

/* htb_fragment_each callback: feeds each fragment, as it comes, to a
 * reassembler; stops at a gap in the indexes or a failed push. */
typedef struct feed {
  htb_reasm *r;
  uint8_t *out;
  size_t out_cap;
  htb_reasm_result last;
  size_t frags;
  size_t max_len;
} feed;

static int32_t feed_frag(void *user, const uint8_t *frag, size_t len,
                         size_t index) {
  feed *fd = (feed *)user;
  if (index != fd->frags) {
    return 1;
  }
  fd->frags++;
  if (len > fd->max_len) {
    fd->max_len = len;
  }
  return htb_reasm_push(fd->r, frag, len, 0, 0, &fd->last, fd->out,
                        fd->out_cap) == HTB_STATUS_OK
             ? 0
             : 1;
}

static void test_fragment_round_trip(void) {
  static uint8_t orig[8192], buf[16384], out[8192];
  size_t lens[8];
  htb_frag_options o;
  htb_frag_result fr;
  htb_reasm *r = NULL;
  htb_reasm_result res;
  size_t olen, off;
  feed fd;

  CHECK_ST(htb_reasm_new(NULL, &r), HTB_STATUS_OK);
  memset(&o, 0, sizeof o);
  o.mtu = 1500;

  /* IPv4, 4000 bytes at MTU 1500: 1480 + 1480 + 1020 bytes of data. */
  olen = ip4_datagram(orig, 3980, 4242, 0);
  CHECK_ST(htb_fragment(orig, olen, &o, NULL, 0, NULL, 0, &fr),
           HTB_STATUS_BUFFER_TOO_SMALL); /* sizing call */
  CHECK(fr.count == 3 && fr.bytes == olen + 2 * 20);
  CHECK_ST(htb_fragment(orig, olen, &o, buf, fr.bytes - 1, lens, 8, &fr),
           HTB_STATUS_BUFFER_TOO_SMALL);
  CHECK(fr.count == 3 && fr.bytes == olen + 40);
  CHECK_ST(htb_fragment(orig, olen, &o, buf, sizeof buf, lens, 2, &fr),
           HTB_STATUS_BUFFER_TOO_SMALL);
  CHECK(fr.count == 3);
  CHECK_ST(htb_fragment(orig, olen, &o, buf, olen + 40, lens, 3, &fr),
           HTB_STATUS_OK);
  CHECK(fr.count == 3 && fr.bytes == olen + 40);
  CHECK(lens[0] == 1500 && lens[1] == 1500 && lens[2] == 1040);
  CHECK((get16(buf + 6) & IP_MF) != 0 && csum(buf, 20) == 0);
  /* Reassembled backwards, they give the datagram back. */
  off = lens[0] + lens[1];
  CHECK_ST(htb_reasm_push(r, buf + off, lens[2], 0, 0, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, buf + lens[0], lens[1], 0, 0, &res, out,
                          sizeof out),
           HTB_STATUS_OK);
  CHECK_ST(htb_reasm_push(r, buf, lens[0], 0, 0, &res, out, sizeof out),
           HTB_STATUS_OK);
  CHECK(res.outcome == HTB_REASM_OUTCOME_COMPLETE && res.len == olen &&
        memcmp(out, orig, olen) == 0);

  /* An IPv6 fragment cannot be fragmented again (the kernel would reject
     the nested fragment header): the packet is at fault. */
  olen = ip6_frag(orig, 0, 2000, 1);
  CHECK_ST(htb_fragment(orig, olen, &o, buf, sizeof buf, lens, 8, &fr),
           HTB_STATUS_MALFORMED);

  /* A packet that fits is its own single fragment, unchanged. */
  CHECK_ST(htb_fragment(orig, 120, &o, buf, 0, NULL, 0, &fr),
           HTB_STATUS_MALFORMED); /* 120 bytes but total length says 4000 */
  olen = ip4_datagram(orig, 100, 1, 0);
  CHECK_ST(htb_fragment(orig, olen, &o, buf, sizeof buf, lens, 8, &fr),
           HTB_STATUS_OK);
  CHECK(fr.count == 1 && lens[0] == olen && memcmp(buf, orig, olen) == 0);

  /* DF: the MTU to report; ignore_df fragments anyway. */
  olen = ip4_datagram(orig, 3000, 2, IP_DF);
  memset(&fr, 0, sizeof fr);
  CHECK_ST(htb_fragment(orig, olen, &o, buf, sizeof buf, lens, 8, &fr),
           HTB_STATUS_DONT_FRAGMENT);
  CHECK(fr.mtu == 1500);
  o.ignore_df = true;
  CHECK_ST(htb_fragment(orig, olen, &o, buf, sizeof buf, lens, 8, &fr),
           HTB_STATUS_OK);
  CHECK(fr.count == 3);
  o.ignore_df = false;
  /* An MTU with no room for data. */
  olen = ip4_datagram(orig, 3000, 3, 0);
  o.mtu = 24;
  memset(&fr, 0, sizeof fr);
  CHECK_ST(htb_fragment(orig, olen, &o, buf, sizeof buf, lens, 8, &fr),
           HTB_STATUS_MTU_TOO_SMALL);
  CHECK(fr.mtu > 24);
  o.mtu = 1500;

  /* IPv6, 3000 bytes of data at MTU 1280: 1232 + 1232 + 536, a fixed id. */
  olen = ip6_datagram(orig, 3000);
  o.mtu = 1280;
  o.set_ipv6_id = true;
  o.ipv6_id = 0xdeadbeef;
  CHECK_ST(htb_fragment(orig, olen, &o, buf, sizeof buf, lens, 8, &fr),
           HTB_STATUS_OK);
  CHECK(fr.count == 3 && lens[0] == 1280 && lens[2] == 48 + 536);
  CHECK(buf[6] == 44 && buf[44] == 0xde && buf[47] == 0xef);
  memset(&fd, 0, sizeof fd);
  fd.r = r;
  fd.out = out;
  fd.out_cap = sizeof out;
  CHECK_ST(htb_fragment_each(orig, olen, &o, feed_frag, &fd, &fr), HTB_STATUS_OK);
  CHECK(fr.count == 3 && fd.frags == 3 && fd.max_len == 1280);
  CHECK(fd.last.outcome == HTB_REASM_OUTCOME_COMPLETE && fd.last.len == olen &&
        memcmp(out, orig, olen) == 0);
  o.mtu = 1000; /* below IPv6's minimum */
  CHECK_ST(htb_fragment_each(orig, olen, &o, feed_frag, &fd, &fr),
           HTB_STATUS_MTU_TOO_SMALL);
  CHECK(fr.mtu == 1280);

  /* NULLs and zero lengths. */
  o.mtu = 1500;
  CHECK_ST(htb_fragment(NULL, 10, &o, buf, sizeof buf, lens, 8, &fr),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fragment(orig, olen, NULL, buf, sizeof buf, lens, 8, &fr),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fragment(orig, olen, &o, NULL, 10, lens, 8, &fr),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fragment(orig, olen, &o, buf, sizeof buf, NULL, 8, &fr),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fragment(orig, olen, &o, buf, sizeof buf, lens, 8, NULL),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fragment_each(orig, olen, &o, NULL, NULL, &fr),
           HTB_STATUS_NULL_PARAMETER);
  CHECK_ST(htb_fragment(orig, 0, &o, buf, sizeof buf, lens, 8, &fr),
           HTB_STATUS_MALFORMED);
  htb_reasm_free(r);
}

int main(void) {
  test_strings_and_config();
  test_nulls_and_freed();
  test_bad_packets();
  test_three_fragments();
  test_small_buffer_and_owned();
  test_duplicate_and_overlap();
  test_expire();
  test_ipv6_param_problem();
  test_fragment_round_trip();
  if (failures != 0) {
    fprintf(stderr, "reasm_test: %d of %d checks FAILED\n", failures, checks);
    return 1;
  }
  printf("reasm_test: all %d checks passed\n", checks);
  return 0;
}
