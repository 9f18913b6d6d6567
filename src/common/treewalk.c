/*
 * treewalk: see treewalk.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pathmap.h"
#include "treewalk.h"

static unsigned char
type_of(int dfd, const struct dirent *de)
{
	struct stat sb;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type;
	if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		return DT_UNKNOWN;
	return S_ISDIR(sb.st_mode) ? DT_DIR : S_ISREG(sb.st_mode) ? DT_REG :
	    S_ISLNK(sb.st_mode) ? DT_LNK : S_ISFIFO(sb.st_mode) ? DT_FIFO :
	    S_ISSOCK(sb.st_mode) ? DT_SOCK : S_ISCHR(sb.st_mode) ? DT_CHR :
	    S_ISBLK(sb.st_mode) ? DT_BLK : DT_UNKNOWN;
}

static int
walk(int dfd, const char *sub, int depth, treewalk_fn fn, void *ud)
{
	char rel[PATH_MAX];
	struct dirent *de;
	unsigned char type;
	DIR *dp;
	int fd, rc = 0;

	if (depth > TREEWALK_MAX_DEPTH || (dp = fdopendir(dfd)) == NULL) {
		close(dfd);
		return 0;
	}
	while (rc >= 0 && (de = readdir(dp)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    pathmap_join(rel, sizeof(rel), sub, de->d_name) < 0)
			continue;
		type = type_of(dirfd(dp), de);
		rc = fn(ud, dirfd(dp), de->d_name, rel, type, depth);
		if (rc != TREEWALK_NEXT || type != DT_DIR)
			continue;
		fd = openat(dirfd(dp), de->d_name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			rc = walk(fd, rel, depth + 1, fn, ud);
	}
	closedir(dp);
	return rc < 0 ? rc : 0;
}

int
treewalk(int dfd, const char *sub, treewalk_fn fn, void *ud)
{
	return walk(dfd, sub ? sub : "", 0, fn, ud);
}
