/*
 * XRootD's kXR_error numbers (XProtocol.hh, XErrorCode), as data servers,
 * redirectors and dCache doors send them: a pure table, no library.
 */
#include "config.h"

#include <errno.h>

#include "util/errmap.h"
#include "util/banned.h"

int rfs_errno_from_xrd(int errnum)
{
	switch (errnum) {
	case 3000: /* kXR_ArgInvalid */
	case 3001: /* kXR_ArgMissing */
	case 3006: /* kXR_InvalidRequest */
		return -EINVAL;
	case 3002: /* kXR_ArgTooLong */
		return -ENAMETOOLONG;
	case 3003: /* kXR_FileLocked */
		return -EDEADLK;
	case 3004: /* kXR_FileNotOpen */
		return -EBADF;
	case 3008: /* kXR_NoMemory */
		return -ENOMEM;
	case 3009: /* kXR_NoSpace */
	case 3021: /* kXR_overQuota */
		return -ENOSPC;
	case 3010: /* kXR_NotAuthorized */
	case 3030: /* kXR_AuthFailed */
	case 3028: /* kXR_TLSRequired */
		return -EACCES;
	case 3011: /* kXR_NotFound */
	case 3029: /* kXR_noReplicas */
		return -ENOENT;
	case 3013: /* kXR_Unsupported */
		return -EOPNOTSUPP;
	case 3014: /* kXR_noserver */
		return -EHOSTUNREACH;
	case 3015: /* kXR_NotFile */
		return -ENOTBLK;
	case 3016: /* kXR_isDirectory */
		return -EISDIR;
	case 3017: /* kXR_Cancelled */
		return -ECANCELED;
	case 3018: /* kXR_ItExists */
		return -EEXIST;
	case 3019: /* kXR_ChkSumErr */
		return -EBADMSG;
	case 3020: /* kXR_inProgress */
		return -EINPROGRESS;
	case 3024: /* kXR_Overloaded */
		return -EBUSY;
	case 3025: /* kXR_fsReadOnly */
		return -EROFS;
	case 3026: /* kXR_BadPayload */
		return -EPROTO;
	case 3034: /* kXR_ReqTimedOut */
	case 3035: /* kXR_TimerExpired */
		return -ETIMEDOUT;
	default: /* kXR_FSError, kXR_IOError, kXR_ServerError, unknown */
		return -EIO;
	}
}
