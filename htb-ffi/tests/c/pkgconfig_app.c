/* The smallest program built with the documented install line:
 *   cc app.c $(pkg-config --cflags --libs htb)
 * (htb-ffi/tests/c_tests.rs, make_install_and_pkg_config). */
#include <htb.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  htb_qdisc *q = NULL;
  if (strcmp(htb_version(), HTB_VERSION_STRING) != 0) {
    return 1;
  }
  if (htb_qdisc_new(1, 0x10, 0, &q) != HTB_STATUS_OK) {
    return 2;
  }
  htb_qdisc_free(q, NULL, NULL);
  printf("linked libhtb %s\n", htb_version());
  return 0;
}
