/* Capabilities: names -> masks (pure), and applying a mask in the
 * container's child with raw syscalls (no allocation, no libcap state). */
#include "runtime/container_impl.h"

#include <ctype.h>
#include <linux/capability.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static const char *const cap_names[] = {
	"CHOWN",	    "DAC_OVERRIDE",	"DAC_READ_SEARCH",
	"FOWNER",	    "FSETID",		"KILL",
	"SETGID",	    "SETUID",		"SETPCAP",
	"LINUX_IMMUTABLE",  "NET_BIND_SERVICE", "NET_BROADCAST",
	"NET_ADMIN",	    "NET_RAW",		"IPC_LOCK",
	"IPC_OWNER",	    "SYS_MODULE",	"SYS_RAWIO",
	"SYS_CHROOT",	    "SYS_PTRACE",	"SYS_PACCT",
	"SYS_ADMIN",	    "SYS_BOOT",		"SYS_NICE",
	"SYS_RESOURCE",	    "SYS_TIME",		"SYS_TTY_CONFIG",
	"MKNOD",	    "LEASE",		"AUDIT_WRITE",
	"AUDIT_CONTROL",    "SETFCAP",		"MAC_OVERRIDE",
	"MAC_ADMIN",	    "SYSLOG",		"WAKE_ALARM",
	"BLOCK_SUSPEND",    "AUDIT_READ",	"PERFMON",
	"BPF",		    "CHECKPOINT_RESTORE",
};

int cap_from_name(const char *name)
{
	if (strncasecmp(name, "CAP_", 4) == 0)
		name += 4;
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (strcasecmp(name, cap_names[i]) == 0)
			return (int)i;
	return -1;
}

int cap_last(void)
{
	static int last = -1;
	if (last >= 0)
		return last;
	last = (int)ARRAY_SIZE(cap_names) - 1;
	char buf[16] = {0};
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			last = atoi(buf);
		fclose(f);
	}
	if (last < 0 || last > 63)
		last = (int)ARRAY_SIZE(cap_names) - 1;
	return last;
}

static uint64_t caps_all(void)
{
	int last = cap_last();
	return last >= 63 ? ~0ULL : (1ULL << (last + 1)) - 1;
}

uint64_t rt_caps_held(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2] = {0};
	if (syscall(SYS_capget, &hdr, data) < 0)
		return 0;
	uint64_t m = (uint64_t)data[0].permitted |
		     (uint64_t)data[1].permitted << 32;
	/* The bounding set changes with the user namespace, and when a
	 * process drops from it, which none does before it asks: read once
	 * per namespace (a prctl per capability, for every container). */
	static uint64_t bset;
	static ino_t bset_ns;
	struct stat ns;
	bool known = stat("/proc/self/ns/user", &ns) == 0;
	if (!known || ns.st_ino != bset_ns) {
		bset = 0;
		for (int c = 0; c <= cap_last(); c++)
			if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
				bset |= 1ULL << c;
		bset_ns = known ? ns.st_ino : 0;
	}
	return m & bset & caps_all();
}

/* Docker's order: start from the default set (or all), drop, then add;
 * "ALL" in add means every capability, "ALL" in drop empties the start.
 * Only what is available can be given, as podman: privileged, ALL and the
 * defaults shrink to it; a capability named in add must be in it. */
int rt_caps_resolve(char *const *add, char *const *drop, bool privileged,
		    uint64_t available, uint64_t *mask, struct orch_err *e)
{
	available &= caps_all();
	if (privileged) {
		*mask = available;
		return 0;
	}
	uint64_t m = CAPS_DOCKER_DEFAULT, add_m = 0, drop_m = 0;
	for (size_t i = 0; drop && drop[i]; i++) {
		if (strcasecmp(drop[i], "ALL") == 0) {
			drop_m = ~0ULL;
			continue;
		}
		int c = cap_from_name(drop[i]);
		if (c < 0)
			return err_set(e, EINVAL, "unknown capability %s",
				       drop[i]);
		drop_m |= 1ULL << c;
	}
	for (size_t i = 0; add && add[i]; i++) {
		if (strcasecmp(add[i], "ALL") == 0) {
			add_m = available;
			continue;
		}
		int c = cap_from_name(add[i]);
		if (c < 0)
			return err_set(e, EINVAL, "unknown capability %s",
				       add[i]);
		if (!(available & (1ULL << c)))
			return err_set(e, EPERM,
				       "cap_add: CAP_%s is not available: this "
				       "host's capability bounding set lacks it, "
				       "so orch cannot give it",
				       cap_names[c]);
		add_m |= 1ULL << c;
	}
	m = (m & ~drop_m) | add_m;
	*mask = m & available;
	return 0;
}

int caps_drop_bounding(uint64_t mask, struct orch_err *e)
{
	int last = cap_last();
	for (int c = 0; c <= last; c++) {
		if (mask & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return err_sys(e, errno, "dropping capability %d from the bounding set", c);
	}
	return 0;
}

int caps_set(uint64_t mask, struct orch_err *e)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	for (int i = 0; i < 2; i++) {
		uint32_t half = (uint32_t)(mask >> (32 * i));
		data[i].effective = data[i].permitted = data[i].inheritable = half;
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return err_sys(e, errno, "setting capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)
		return err_sys(e, errno, "clearing ambient capabilities");
	return 0;
}
