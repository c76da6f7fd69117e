/*
 * cli_progress.c: the progress line of a terminal, drawn again in place (a
 * backfill's rows, a fleet's targets). Only on a terminal: logs get whole
 * lines only (and the callers leave it out with -q and --json). While a
 * step's line is open ("Running upgrade a -> b ... "), the progress follows
 * it on the same line, and the line is given back when the step ends. It
 * calls no other part of the CLI.
 */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"

static char head[512];                /* the open line: drawn again before each progress */
static char drawn[1024];              /* what the line shows now */
static bool shown;

void luamig_cli_progress_head(const char *text) {
  if (text) snprintf(head, sizeof head, "%s ... ", text);
  else head[0] = '\0';
}

/* The terminal's width less one (a full line would wrap, and \r would then
 * go back to the start of the second row only). */
static size_t width(void) {
  struct winsize ws;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) return (size_t)ws.ws_col - 1;
  return 79;
}

void luamig_cli_progress(const char *text) {
  if (!isatty(STDOUT_FILENO)) return;
  char line[sizeof drawn];
  snprintf(line, sizeof line, "%s%s", head, text);
  if (shown && strcmp(line, drawn) == 0) return;   /* nothing new: no flicker */
  memcpy(drawn, line, sizeof drawn);
  size_t n = strlen(line), max = width();
  if (n > max) {                     /* cut at a character boundary */
    n = max;
    while (n > 0 && ((unsigned char)line[n] & 0xC0) == 0x80) n--;
  }
  printf("\r\033[K%.*s", (int)n, line);
  fflush(stdout);
  shown = true;
}

void luamig_cli_progress_end(void) {
  if (!shown) return;
  printf("\r\033[K%s", head);
  fflush(stdout);
  shown = false;
}
