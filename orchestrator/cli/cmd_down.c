/* orch down: remove everything of the project; succeeds on a project
 * that is half gone or already gone. */
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"

static const char down_usage[] =
	"[-v] [--remove-orphans] [-t S] [--rmi local|all]";

enum { O_ORPHANS = CLI_OPT_LOCAL, O_RMI };

/* A project with no state: an up killed before it recorded anything
 * leaves the project's directory and its lock (or the directory alone),
 * which go too; with -v, its volumes go as well (those a down without -v
 * kept), as compose does. */
static int down_unrecorded(bool volumes)
{
	_cleanup_free_ char *name = NULL;
	struct pstate ps;
	struct orch_err e = {0}, ign = {0};
	if (cli_project_name(&name, NULL) < 0)
		return 0;
	bool locked = pstate_open(name, false, &ps, &ign) == 0;
	/* One killed between making the directory and its lock left the
	 * directory alone: the lock is made, to go with it. */
	struct pstate dir;
	if (!locked && pstate_read(name, &dir, &ign) == 0) {
		pstate_close(&dir);
		locked = pstate_open(name, true, &ps, &ign) == 0;
	}
	if (locked && !ps.exists)
		pstate_remove(&ps, &ign);
	if (volumes)
		remove_project_volumes(name, true, &e);
	if (locked)
		pstate_close(&ps);
	return e.code ? cli_fail(&e) : 0;
}

int cmd_down(int argc, char **argv)
{
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"volumes", no_argument, NULL, 'v'},
		{"remove-orphans", no_argument, NULL, O_ORPHANS},
		{"timeout", required_argument, NULL, 't'},
		{"rmi", required_argument, NULL, O_RMI},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct down_opts o = {.timeout_ms = -1};
	const char *rmi = NULL;
	int c;
	optind = 1;
	long long num;
	while ((c = cli_getopt(argc, argv, "vt:h" CLI_GLOBAL_SHORTOPTS,
			       lopts)) != -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		switch (c) {
		case 'v':
			o.volumes = true;
			break;
		case O_ORPHANS:
			o.remove_orphans = true;
			break;
		case 't':
			if (cli_opt_num("down", "--timeout", optarg, 0,
					CLI_TIMEOUT_MAX, &num) < 0)
				return 2;
			o.timeout_ms = num * 1000;
			break;
		case O_RMI:
			if (!streq(optarg, "local") && !streq(optarg, "all"))
				return cli_usage("down", down_usage);
			rmi = optarg;
			break;
		case 'h':
			printf("Usage: orch down %s\n", down_usage);
			return 0;
		default:
			return cli_usage("down", down_usage);
		}
	}
	if (optind < argc)
		return cli_usage("down", down_usage);
	struct pstate ps;
	struct orch_err e = {0};
	int r = cli_open(&ps, NULL, &e);
	/* After a reboot, what no project's state names any more (not for
	 * a file refused: bad input changes nothing). */
	if (r == 0 || r == -ENOENT)
		rt_upper_sweep();
	if (r == -ENOENT)
		return down_unrecorded(o.volumes); /* little to do is success */
	if (r < 0)
		return cli_fail(&e);
	r = pstate_check_owner(&ps, host_uid(), NULL, &e);
	_cleanup_strv_ char **images = NULL;
	if (r == 0 && rmi) {
		size_t i;
		json_t *ct;
		json_array_foreach(state_containers(&ps), i, ct)
		{
			const char *img = jstr(ct, "image");
			/* local: only images without a name of their own,
			 * those compose names <project>-<service>. */
			_cleanup_free_ char *own = xasprintf(
				"%s-%s", ps.name, jstr(ct, "service") ?: "");
			if (streq(rmi, "local") && img && !streq(img, own))
				continue;
			if (img && !strv_contains(images, img))
				strv_push(&images, img);
		}
	}
	if (r == 0)
		r = reconcile_down(&ps, &o, &e);
	pstate_close(&ps);
	if (r < 0)
		return cli_fail(&e);
	for (size_t i = 0; images && images[i]; i++) {
		struct orch_err ie = {0};
		if (rt_image_remove(images[i], false, &ie) == 0)
			progress("Image", images[i], "Removed");
	}
	return 0;
}
