/* What the C test programs share: the check counters, the last error as
 * text, and the CHECK / CHECK_ST macros that count a check and report a
 * failure with its file, line and (for statuses) the library's message.
 * Each test includes it once, after htb.h. */

#ifndef HTB_TEST_CHECK_H
#define HTB_TEST_CHECK_H

#include <stdio.h>

static int checks;
static int failures;

static const char *last_error(void) {
  static char buf[512];
  size_t n = 0;
  if (htb_last_error(buf, sizeof buf, &n) != HTB_STATUS_OK) {
    return "(htb_last_error failed)";
  }
  return buf;
}

#define CHECK(cond)                                                        \
  do {                                                                     \
    checks++;                                                              \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,     \
              #cond);                                                      \
      failures++;                                                          \
    }                                                                      \
  } while (0)

#define CHECK_ST(expr, want)                                               \
  do {                                                                     \
    htb_status st_ = (expr);                                               \
    checks++;                                                              \
    if (st_ != (htb_status)(want)) {                                       \
      fprintf(stderr, "%s:%d: %s = %u (%s), want %u (%s); last error: %s\n", \
              __FILE__, __LINE__, #expr, (unsigned)st_,                    \
              htb_status_str(st_), (unsigned)(want),                       \
              htb_status_str(want), last_error());                         \
      failures++;                                                          \
    }                                                                      \
  } while (0)

#endif
