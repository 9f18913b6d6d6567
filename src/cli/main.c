/*
 * thumbwatch: command line, configuration sources, and the role switch.
 *
 * The same binary is the supervisor (run, once), a one-shot tool
 * (check-config) and, re-executed by the supervisor, a worker: a worker
 * starts as a fresh process image, so libvips' threads never meet fork().
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <unistd.h>
#include <hiredis.h>
#include <microhttpd.h>
#include <uv.h>
#include <vips/vips.h>

#include "config.h"
#include "control.h"
#include "control_client.h"
#include "daemon.h"
#include "failures.h"
#include "fsutil.h"
#include "pidfile.h"
#include "safedir.h"
#include "worker.h"

#define WORKER_NICE 10

extern char **environ;

struct cli {
	const char *command;
	const char *config_path;	/* NULL: the default, if present */
	const char *env_path;
	int argc;
	char **argv;
	bool daemon;			/* run --daemon */
	const char *pidfile;		/* run --pidfile FILE */
	bool json;			/* status/reprocess/retry-failed --json */
	int npaths;			/* reprocess PATH... */
	char **paths;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: thumbwatch [COMMAND] [--config FILE] [--env-file FILE] "
	    "[--KEY VALUE ...]\n"
	    "       thumbwatch -h|--help | -V|--version\n"
	    "\n"
	    "  run [--daemon] [--pidfile FILE]\n"
	    "                watch INPUT_DIR and make thumbnails (default)\n"
	    "  once          process what INPUT_DIR holds now, then exit "
	    "(status 1 if any file failed);\n"
	    "                the folder must exist; the log goes to LOG_FILE "
	    "as for run\n"
	    "                (default ./logs/thumbwatch.log, shared with a "
	    "daemon started here)\n"
	    "  check-config  print the effective configuration and where "
	    "each value came from\n"
	    "  status [--json]\n"
	    "                ask the running daemon how it is doing\n"
	    "  reprocess [--json] PATH...\n"
	    "                make these files' thumbnails again\n"
	    "  retry-failed [--json]\n"
	    "                queue every file that failed again\n"
	    "  failures [--json]\n"
	    "                list the failures remembered in OUTPUT_DIR, with "
	    "reason and time\n"
	    "\n"
	    "  --config FILE    INI file (default config/thumbwatch.ini when "
	    "present)\n"
	    "  --env-file FILE  KEY=VALUE file (default ./.env when present)\n"
	    "  --daemon         run: detach; return once the daemon runs\n"
	    "  --pidfile FILE   run: pidfile (default "
	    "RUNTIME_DIR/thumbwatch.pid)\n"
	    "  --json           status, reprocess, retry-failed, failures: "
	    "print JSON\n"
	    "\n"
	    "Every key below is also an environment variable THUMBWATCH_KEY "
	    "and a flag\n--key-name. Precedence: defaults < INI < .env < "
	    "environment < flags.\n\nKeys:\n");
	config_usage_keys(fp);
	fprintf(fp, "\nSignals: TERM/INT finish in-flight work and exit; HUP "
	    "reopens the log and reloads the configuration.\n");
}

/* A file named on the command line must exist; the implicit default is
 * read only when present. */
static int
load_optional(struct config *cfg,
    int (*load)(struct config *, const char *, char *, size_t),
    const char *path, const char *flag, bool named, char *err,
    size_t errlen)
{
	int rc = load(cfg, path, err, errlen);

	if (rc == -ENOENT && named) {
		snprintf(err, errlen, "%s %s: no such file", flag, path);
		return rc;
	}
	return rc == -ENOENT ? 0 : rc;
}

/* Applies every source in precedence order into cfg. */
static int
load_config(const struct cli *cli, struct config *cfg, char *err,
    size_t errlen)
{
	const char *ini = cli->config_path ? cli->config_path :
	    "config/thumbwatch.ini";
	const char *env = cli->env_path ? cli->env_path : ".env";
	char key[128];
	long ncpu;
	int i, rc;

	if ((rc = config_init(cfg)) < 0) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	if ((rc = load_optional(cfg, config_load_ini, ini, "--config",
	    cli->config_path != NULL, err, errlen)) < 0 ||
	    (rc = load_optional(cfg, config_load_env_file, env, "--env-file",
	    cli->env_path != NULL, err, errlen)) < 0)
		goto fail;
	if ((rc = config_load_environ(cfg, environ, err, errlen)) < 0)
		goto fail;
	for (i = 0; i < cli->argc; i++) {
		const char *a = cli->argv[i] + 2, *eq = strchr(a, '=');
		const char *val;
		size_t n = eq ? (size_t)(eq - a) : strlen(a), k;

		if (n >= sizeof(key))
			n = sizeof(key) - 1;
		for (k = 0; k < n; k++)
			key[k] = a[k] == '-' ? '_' : a[k];
		key[n] = '\0';
		val = eq ? eq + 1 : cli->argv[++i];
		if ((rc = config_set(cfg, key, val, "command line", err,
		    errlen)) < 0)
			goto fail;
	}
	if (cli->pidfile)
		snprintf(cfg->pidfile, sizeof(cfg->pidfile), "%s", cli->pidfile);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if ((rc = config_finish(cfg, ncpu > 0 ? (int)ncpu : 1, err,
	    errlen)) < 0)
		goto fail;
	return 0;
fail:
	config_free(cfg);
	return rc < 0 ? rc : -EINVAL;
}

static int
reload_config(void *ud, struct config *out, char *err, size_t errlen)
{
	return load_config(ud, out, err, errlen);
}

static bool
is_config_flag(const char *a)
{
	char key[128];
	size_t i, k, n;

	if (strncmp(a, "--", 2) != 0)
		return false;
	a += 2;
	n = strcspn(a, "=");
	if (n == 0 || n >= sizeof(key))
		return false;
	for (k = 0; k < n; k++)
		key[k] = (char)(a[k] == '-' ? '_' : (a[k] >= 'a' && a[k] <= 'z' ?
		    a[k] - 32 : a[k]));
	key[n] = '\0';
	for (i = 0; i < config_nkeys(); i++)
		if (strcmp(config_key_name(i), key) == 0)
			return true;
	return false;
}

/* A runaway image then fails its own allocation (and the worker with it,
 * which the supervisor reports) instead of the kernel OOM-killing
 * something.  Sanitizer builds reserve terabytes of shadow memory, so
 * there the limit cannot apply. */
static void
limit_memory(long mb)
{
#if defined(__SANITIZE_ADDRESS__)
	(void)mb;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	(void)mb;
#else
	struct rlimit rl;

	if (mb <= 0)
		return;
	rl.rlim_cur = rl.rlim_max = (rlim_t)mb * 1024 * 1024;
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		perror("thumbwatch worker: setrlimit(RLIMIT_AS)");
#endif
#else
	struct rlimit rl;

	if (mb <= 0)
		return;
	rl.rlim_cur = rl.rlim_max = (rlim_t)mb * 1024 * 1024;
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		perror("thumbwatch worker: setrlimit(RLIMIT_AS)");
#endif
}

/* Test hook: a worker that does not die with its supervisor, to stand for
 * one left by an older version; the next start-up must end it. */
static bool
test_keep_orphan(void)
{
	const char *hooks = getenv("THUMBWATCH_TEST_HOOKS");
	const char *keep = getenv("THUMBWATCH_TEST_KEEP_ORPHAN");

	return hooks != NULL && strcmp(hooks, "1") == 0 && keep != NULL &&
	    strcmp(keep, "1") == 0;
}

/* run: RUNTIME_DIR and the pidfile's folder must be out of other local
 * users' reach before anything is created in them (see safedir.h).  The
 * folders are made here, 0700, when missing.  A folder that cannot be
 * made is left to the pidfile and socket code, which says why. */
static int
check_runtime_dirs(const struct config *cfg)
{
	char err[1024];

	if (fs_mkdir_p(cfg->runtime_dir, 0700) == 0 &&
	    safedir_check("RUNTIME_DIR", cfg->runtime_dir, SAFEDIR_PRIVATE,
	    err, sizeof(err)) == -EPERM) {
		fprintf(stderr, "thumbwatch: %s\n", err);
		return EX_CONFIG;
	}
	if (cfg->pidfile[0] && fs_mkdir_parents(cfg->pidfile, 0700) == 0 &&
	    pidfile_dir_check(cfg->pidfile, err, sizeof(err)) == -EPERM) {
		fprintf(stderr, "thumbwatch: %s\n", err);
		return EX_CONFIG;
	}
	return 0;
}

static bool
is_control_command(const char *c)
{
	return !strcmp(c, "status") || !strcmp(c, "reprocess") ||
	    !strcmp(c, "retry-failed");
}

/* status, reprocess, retry-failed: one exchange with the running daemon
 * found through RUNTIME_DIR. */
static int
control_command(const struct cli *cli, const struct config *cfg)
{
	char sock[PATH_MAX], *line;
	int rc;

	if (control_socket_path(sock, sizeof(sock), cfg->runtime_dir) < 0) {
		fprintf(stderr, "thumbwatch: RUNTIME_DIR is too long\n");
		return EX_CONFIG;
	}
	rc = control_format_request(cli->command, cli->paths,
	    (size_t)cli->npaths, true, &line);
	if (rc == -E2BIG) {
		fprintf(stderr, "thumbwatch: too many paths for one request "
		    "(at most %d bytes): split them\n", CONTROL_LINE_MAX);
		return EX_USAGE;
	}
	if (rc < 0) {
		fprintf(stderr, "thumbwatch: %s: %s\n", cli->command,
		    rc == -EINVAL ? "bad arguments (see thumbwatch --help)" :
		    strerror(-rc));
		return rc == -EINVAL ? EX_USAGE : EX_OSERR;
	}
	rc = control_client(sock, line, stdout, cli->json);
	free(line);
	return rc;
}

/* The libraries a bug report needs: the ones linked at run time where they
 * say (libvips, libuv, libmicrohttpd), hiredis as built.  vips_version()
 * reads constants: libvips is not initialised in the supervisor. */
static void
print_version(void)
{
	printf("thumbwatch %s\n", THUMBWATCH_VERSION);
	printf("libvips %d.%d.%d, libuv %s, libmicrohttpd %s, hiredis %d.%d.%d\n",
	    vips_version(0), vips_version(1), vips_version(2),
	    uv_version_string(), MHD_get_version(), HIREDIS_MAJOR,
	    HIREDIS_MINOR, HIREDIS_PATCH);
}

int
main(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct config cfg;
	char err[1024], exe[PATH_MAX];
	char **flags;
	size_t exelen = sizeof(exe);
	int i, rc, nflags = 0;
	enum daemon_mode mode;

	/* Worker mode: "thumbwatch worker --formats LIST --memory-mb N
	 * --parent PID --instance INPUT_DIR", fd 3 = channel to the
	 * supervisor. */
	if (argc >= 2 && strcmp(argv[1], "worker") == 0) {
		const char *formats = "jpg,jpeg,png,webp,tif,tiff,gif,heic,"
		    "heif,avif,jxl";
		long mb = 0, parent = 0;

		/* Before anything else: a worker stuck in a decode never
		 * reads its channel, so it would not notice the supervisor's
		 * death by itself. */
		if (!test_keep_orphan() &&
		    prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
			perror("thumbwatch worker: prctl(PR_SET_PDEATHSIG)");
		for (i = 2; i + 1 < argc; i += 2) {
			if (strcmp(argv[i], "--formats") == 0)
				formats = argv[i + 1];
			else if (strcmp(argv[i], "--memory-mb") == 0)
				mb = strtol(argv[i + 1], NULL, 10);
			else if (strcmp(argv[i], "--parent") == 0)
				parent = strtol(argv[i + 1], NULL, 10);
		}
		/* The supervisor may have died between our fork and the
		 * prctl: then no signal comes, and we were reparented. */
		if (parent > 0 && getppid() != (pid_t)parent)
			_exit(EX_SOFTWARE);
		limit_memory(mb);
		/* Images are background work: the supervisor's loop (events,
		 * the control socket, HTTP, health checks) must stay prompt
		 * when every core is decoding.  An idle CPU still goes to the
		 * workers, so throughput on a quiet machine is unchanged. */
		if (setpriority(PRIO_PROCESS, 0, WORKER_NICE) != 0)
			perror("thumbwatch worker: setpriority");
		return worker_main(3, argv[0], formats);
	}

	if ((flags = calloc((size_t)argc + 1, sizeof(*flags))) == NULL ||
	    (cli.paths = calloc((size_t)argc + 1, sizeof(char *))) == NULL) {
		free(flags);
		return EX_SOFTWARE;
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			rc = 0;
			goto out;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			print_version();
			rc = 0;
			goto out;
		}
		if (!strcmp(a, "--config") || !strcmp(a, "--env-file")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "thumbwatch: %s needs a file\n", a);
				rc = EX_USAGE;
				goto out;
			}
			if (!strcmp(a, "--config"))
				cli.config_path = argv[++i];
			else
				cli.env_path = argv[++i];
			continue;
		}
		if (!strncmp(a, "--config=", 9)) {
			cli.config_path = a + 9;
			continue;
		}
		if (!strncmp(a, "--env-file=", 11)) {
			cli.env_path = a + 11;
			continue;
		}
		if (!strcmp(a, "--daemon")) {
			cli.daemon = true;
			continue;
		}
		if (!strcmp(a, "--json")) {
			cli.json = true;
			continue;
		}
		if (!strcmp(a, "--pidfile")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "thumbwatch: --pidfile needs a "
				    "file\n");
				rc = EX_USAGE;
				goto out;
			}
			cli.pidfile = argv[++i];
			continue;
		}
		if (!strncmp(a, "--pidfile=", 10)) {
			cli.pidfile = a + 10;
			continue;
		}
		if (a[0] == '-') {
			if (!is_config_flag(a)) {
				fprintf(stderr, "thumbwatch: unknown option %s "
				    "(see thumbwatch --help)\n", a);
				rc = EX_USAGE;
				goto out;
			}
			flags[nflags++] = argv[i];
			if (strchr(a, '=') == NULL) {
				if (i + 1 >= argc) {
					fprintf(stderr, "thumbwatch: %s needs a "
					    "value\n", a);
					rc = EX_USAGE;
					goto out;
				}
				flags[nflags++] = argv[++i];
			}
			continue;
		}
		if (cli.command && !strcmp(cli.command, "reprocess")) {
			cli.paths[cli.npaths++] = argv[i];
			continue;
		}
		if (cli.command) {
			fprintf(stderr, "thumbwatch: unexpected argument %s\n", a);
			rc = EX_USAGE;
			goto out;
		}
		cli.command = a;
	}
	cli.argc = nflags;
	cli.argv = flags;
	if (cli.command == NULL)
		cli.command = "run";
	if (strcmp(cli.command, "run") && strcmp(cli.command, "once") &&
	    strcmp(cli.command, "check-config") &&
	    strcmp(cli.command, "failures") &&
	    !is_control_command(cli.command)) {
		fprintf(stderr, "thumbwatch: unknown command %s (run, once, "
		    "check-config, status, reprocess, retry-failed, "
		    "failures)\n", cli.command);
		rc = EX_USAGE;
		goto out;
	}
	if ((cli.daemon || cli.pidfile) && strcmp(cli.command, "run")) {
		fprintf(stderr, "thumbwatch: --daemon and --pidfile are for "
		    "run\n");
		rc = EX_USAGE;
		goto out;
	}
	if (cli.json && !is_control_command(cli.command) &&
	    strcmp(cli.command, "failures")) {
		fprintf(stderr, "thumbwatch: --json is for status, reprocess, "
		    "retry-failed and failures\n");
		rc = EX_USAGE;
		goto out;
	}
	if (!strcmp(cli.command, "reprocess") && cli.npaths == 0) {
		fprintf(stderr, "thumbwatch: reprocess needs at least one "
		    "PATH\n");
		rc = EX_USAGE;
		goto out;
	}

	if ((rc = load_config(&cli, &cfg, err, sizeof(err))) < 0) {
		fprintf(stderr, "thumbwatch: %s\n", err);
		rc = EX_CONFIG;
		goto out;
	}
	/* Once, at start: a reload reads the same environment. */
	for (const char *w = cfg.warnings, *nl; *w; w = nl + 1) {
		nl = strchr(w, '\n');
		fprintf(stderr, "thumbwatch: warning: %.*s\n", (int)(nl - w), w);
	}
	if (!strcmp(cli.command, "failures")) {
		rc = failures_list(cfg.input_dir, cfg.output_dir, cli.json,
		    stdout);
		if (rc < 0)
			fprintf(stderr, "thumbwatch: failures: OUTPUT_DIR %s: "
			    "%s\n", cfg.output_dir, strerror(-rc));
		config_free(&cfg);
		rc = rc < 0 ? EX_NOINPUT : 0;
		goto out;
	}
	if (!strcmp(cli.command, "check-config")) {
		config_dump(&cfg, stdout);
		config_free(&cfg);
		rc = 0;
		goto out;
	}
	if (is_control_command(cli.command)) {
		rc = control_command(&cli, &cfg);
		config_free(&cfg);
		goto out;
	}
	if (uv_exepath(exe, &exelen) < 0) {
		fprintf(stderr, "thumbwatch: cannot find my own executable\n");
		config_free(&cfg);
		rc = EX_SOFTWARE;
		goto out;
	}
	mode = strcmp(cli.command, "once") ? DAEMON_RUN : DAEMON_ONCE;
	/* LOG_FILE=- would hold the caller's stdout open after --daemon
	 * returns (a reader waiting for EOF would wait forever). */
	if (cli.daemon && strcmp(cfg.log_file, "-") == 0) {
		fprintf(stderr, "thumbwatch: LOG_FILE - (standard output) "
		    "does not go with --daemon: name a file\n");
		config_free(&cfg);
		rc = EX_USAGE;
		goto out;
	}
	if (mode == DAEMON_RUN && (rc = check_runtime_dirs(&cfg)) != 0) {
		config_free(&cfg);
		goto out;
	}
	/* After the configuration is known good (its errors print here,
	 * exit 78, nothing forked); before anything opens the log. */
	if (cli.daemon && (rc = daemonize()) < 0) {
		fprintf(stderr, "thumbwatch: cannot daemonize: %s\n",
		    strerror(-rc));
		config_free(&cfg);
		rc = EX_OSERR;
		goto out;
	}
	rc = daemon_main(&cfg, mode, exe, reload_config, &cli);
	/* --daemon and it failed before it was ready: the waiting command
	 * exits with this status. */
	daemonize_finish(rc);
	config_free(&cfg);
out:
	free(cli.paths);
	free(flags);
	return rc;
}
