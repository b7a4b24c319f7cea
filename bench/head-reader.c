/* The floor for reading a folder of photos: opens every *.jpg / *.jpeg under a folder and
 * reads its first 128 KiB (where a camera's EXIF and XMP are), nothing more. One process,
 * one thread, plain open/read/close. Built by bench/prepare-real.sh (cc -O2).
 * Usage: head-reader FOLDER   prints "<files> <bytes read>". */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define HEAD (128 * 1024)
static char buf[HEAD];
static long long files, bytes;

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (type != FTW_F) return 0;
  const char *dot = strrchr(path, '.');
  if (!dot || (strcasecmp(dot, ".jpg") && strcasecmp(dot, ".jpeg"))) return 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) { perror(path); return 1; }
  size_t got = 0;
  while (got < HEAD) {
    ssize_t n = read(fd, buf + got, HEAD - got);
    if (n < 0) { perror(path); close(fd); return 1; }
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
  files++;
  bytes += (long long)got;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: head-reader FOLDER\n"); return 2; }
  if (nftw(argv[1], visit, 32, FTW_PHYS)) return 1;
  printf("%lld %lld\n", files, bytes);
  return 0;
}
