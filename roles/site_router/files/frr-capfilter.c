/* frr-capfilter: let FRR's daemons start in a container without CAP_SYS_ADMIN.
 *
 * FRR (built with libcap) asks for cap_sys_admin at start-up, only to switch into network
 * namespaces for netns-based VRFs, and exits when the kernel refuses a capability outside the
 * bounding set. The lab gives routers NET_ADMIN and NET_RAW, never SYS_ADMIN. Preloaded into
 * FRR's daemons (LD_PRELOAD, set for frr.service by the role site_router), this wraps libcap's
 * cap_set_proc() and clears every capability the bounding set does not hold before passing the
 * request on, so zebra and bgpd run with what they may have. netns VRFs stay unavailable.
 *
 * Needs no libcap headers: the few libcap symbols are declared here (libcap.so.2 ABI). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>

typedef void *cap_t;
typedef int cap_value_t;
enum { FLAG_EFFECTIVE = 0, FLAG_PERMITTED = 1, FLAG_INHERITABLE = 2 };
enum { FLAG_CLEAR = 0 };

extern int cap_get_bound(cap_value_t cap);
extern int cap_set_flag(cap_t caps, int flag, int n, const cap_value_t *values, int value);

int cap_set_proc(cap_t caps)
{
	static int (*real)(cap_t);
	cap_value_t v;
	int flag;

	if (!real)
		real = (int (*)(cap_t))dlsym(RTLD_NEXT, "cap_set_proc");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	for (v = 0; v < 64; v++) {
		if (cap_get_bound(v) != 0) /* held (1) or no such capability (-1) */
			continue;
		for (flag = FLAG_EFFECTIVE; flag <= FLAG_INHERITABLE; flag++)
			cap_set_flag(caps, flag, 1, &v, FLAG_CLEAR);
	}
	return real(caps);
}
