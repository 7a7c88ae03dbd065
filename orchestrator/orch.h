/* The orchestrator's internal header: the command table and what the
 * command families share. */
#ifndef ORCH_ORCH_H
#define ORCH_ORCH_H

#include "common/common.h"

/* A subcommand: argv[0] is the command's name; returns the exit code. */
struct orch_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_version(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_volume(int argc, char **argv);

#endif
