/* A small program compiled from source for the target architecture by the recipe's command source. */
#include <stdio.h>
#include <sys/utsname.h>

int main(void) {
    struct utsname u;
    if (uname(&u) != 0) {
        perror("uname");
        return 1;
    }
    printf("hello from veridian: built for %s, running on %s %s\n", TARGET_ARCH, u.sysname, u.machine);
    return 0;
}
