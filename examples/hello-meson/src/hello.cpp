// A C++ program built with Meson and the profile's SDK; links the image's zlib through zlib1g-dev.
// libstdc++ is linked statically: the image need not ship the compiler's C++ runtime.
#include <sys/utsname.h>
#include <zlib.h>

#include <iostream>
#include <string>
#include <vector>

int main()
{
    struct utsname u {};
    if (uname(&u) != 0)
        return 1;
    const std::vector<std::string> words{"C++", "on", u.machine, "with", "zlib", zlibVersion()};
    std::string line = "hello-meson:";
    for (const auto &w : words)
        line += " " + w;
    std::cout << line << std::endl;
    return 0;
}
