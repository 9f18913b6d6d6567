/*
 * writers: a read lease tells whether a file is open for writing (see
 * writers.h for why and when it cannot tell).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "writers.h"

#if defined(__linux__) && defined(F_SETLEASE)

/* The lease is held for two system calls, but a writer opening the file
 * in between would have the kernel send us SIGIO: with no handler that
 * ends the process.  Ignored unless someone installed a handler. */
static void
sigio_ignore(void)
{
	static int done;
	struct sigaction sa;

	if (done)
		return;
	done = 1;
	if (sigaction(SIGIO, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
	    !(sa.sa_flags & SA_SIGINFO)) {
		sa.sa_handler = SIG_IGN;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = 0;
		sigaction(SIGIO, &sa, NULL);
	}
}

int
writers_none(int root, const char *rel)
{
	struct stat st;
	int fd, rc;

	sigio_ignore();
	/* O_NONBLOCK: a FIFO swapped in does not block the open, and a
	 * conflicting lease makes it fail with EWOULDBLOCK instead of
	 * waiting for the lease to break. */
	fd = beneath_open(root, rel, O_RDONLY | O_NONBLOCK | O_NOFOLLOW |
	    O_NOCTTY, 0);
	if (fd == -EWOULDBLOCK)
		return 1;
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
		(void)fcntl(fd, F_SETLEASE, F_UNLCK);
		rc = 0;
	} else {
		rc = errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
	}
	close(fd);
	return rc;
}

#else

int
writers_none(int root, const char *rel)
{
	(void)root;
	(void)rel;
	return -ENOTSUP;
}

#endif
