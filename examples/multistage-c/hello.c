/* The program the multi-stage build compiles: prints its build stamp, then a greeting per argument. */
#include <stdio.h>
#include "version.h"

int main(int argc, char **argv) {
  printf("hello-c %s (built %s)\n", HELLO_VERSION, HELLO_BUILT_BY);
  for (int i = 1; i < argc; i++) printf("hello, %s\n", argv[i]);
  return 0;
}
