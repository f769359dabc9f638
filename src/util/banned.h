/* Functions that overflow or hide errors; using one is a compile error. */
#ifndef RFS_BANNED_H
#define RFS_BANNED_H

#define RFS_BANNED(func) sorry_##func##_is_banned_in_ruciofs

#undef strcpy
#define strcpy(x, y) RFS_BANNED(strcpy)
#undef strcat
#define strcat(x, y) RFS_BANNED(strcat)
#undef sprintf
#define sprintf(...) RFS_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) RFS_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) RFS_BANNED(strtok)
#undef atoi
#define atoi(x) RFS_BANNED(atoi)
#undef atol
#define atol(x) RFS_BANNED(atol)
#undef gmtime
#define gmtime(x) RFS_BANNED(gmtime)
#undef localtime
#define localtime(x) RFS_BANNED(localtime)

#endif
