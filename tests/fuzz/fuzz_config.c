/*
 * libFuzzer harness for config: the input is read as an INI file, as a
 * .env file and as environment lines, and whatever it loads is then
 * checked, dumped and fingerprinted.  A parse error is fine; a crash, a
 * leak or undefined behaviour is not.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(struct config *cfg)
{
	static FILE *devnull;
	char fp[512], err[512];
	int i;

	if (devnull == NULL)
		devnull = fopen("/dev/null", "w");
	for (i = 0; i < cfg->npresets; i++)
		config_preset_fingerprint(&cfg->presets[i], fp, sizeof(fp));
	config_finish(cfg, 4, err, sizeof(err));
	if (devnull != NULL)
		config_dump(cfg, devnull);
}

/* Every line of text becomes one NAME=VALUE environment entry. */
static void load_as_environ(char *text)
{
	struct config cfg;
	char **envp, *line, *save = NULL, err[512];
	size_t n = 1, i = 0;
	const char *p;

	for (p = text; *p != '\0'; p++)
		n += *p == '\n';
	envp = calloc(n + 1, sizeof(*envp));
	if (envp == NULL)
		return;
	for (line = strtok_r(text, "\n", &save); line != NULL && i < n;
	    line = strtok_r(NULL, "\n", &save))
		envp[i++] = line;
	if (config_init(&cfg) == 0) {
		if (config_load_environ(&cfg, envp, err, sizeof(err)) == 0)
			exercise(&cfg);
		config_free(&cfg);
	}
	free(envp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char *text, err[512];

	/* Files with NUL bytes are refused before parsing; only the text up
	 * to the first NUL is worth fuzzing. */
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	if (config_init(&cfg) == 0) {
		err[0] = '\0';
		if (config_load_ini_string(&cfg, text, "fuzz.ini", err,
		    sizeof(err)) == 0)
			exercise(&cfg);
		else if (err[0] == '\0')
			abort();	/* every error must say why */
		config_free(&cfg);
	}
	if (config_init(&cfg) == 0) {
		err[0] = '\0';
		if (config_load_env_string(&cfg, text, "fuzz.env", err,
		    sizeof(err)) == 0)
			exercise(&cfg);
		else if (err[0] == '\0')
			abort();
		config_free(&cfg);
	}
	load_as_environ(text);
	free(text);
	return 0;
}
