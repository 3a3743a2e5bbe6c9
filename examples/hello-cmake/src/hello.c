/* A C program built with CMake and the profile's SDK; links the image's libcrypto through libssl-dev. */
#include <stdio.h>
#include <sys/utsname.h>
#include <openssl/crypto.h>

int main(void)
{
    struct utsname u;
    if (uname(&u) != 0)
        return 1;
    printf("hello-cmake: C on %s with %s\n", u.machine, OpenSSL_version(OPENSSL_VERSION));
    return 0;
}
