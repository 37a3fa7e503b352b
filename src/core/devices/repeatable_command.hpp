#pragma once
// Whether the ADB proxy may send a phone's command again after adb answered `closed`: the
// phone's transport went away before the phone's OKAY reached the server. That does not say the
// phone never got the command: an OPEN written just before a link went silent sits in the
// server's socket, and when the link returns the kernel still delivers it to the phone (a close
// keeps unsent data) while the proxy sends the command on the new transport, and it may land
// late: after the copy sent again, after the agent's next commands. A tap sent twice is two taps
// (two purchases, two messages sent), so only what gives the same result however often and
// whenever it runs is repeated:
//
//   sync:                     opening the service does nothing by itself (the pull or push
//                             follows adb's OKAY)
//   shell:CMD, exec:CMD,      when CMD's first word only reads (echo, getprop, cat, ls, stat;
//   shell,OPTIONS:CMD         dumpsys alone or with one service that only reports; screencap and
//                             uiautomator dump, which rewrite the same screen's picture) and
//                             nothing in CMD outside single quotes can join another command
//                             (; & | < > ` $ ( ) " \ or a line break)
//
// Everything else (input, am, rm, wm, dumpsys with arguments that act, an interactive shell,
// anything unknown) is passed back to the agent as adb's refusal: an unknown outcome is refused,
// not guessed.
//
// What a late screencap still risks: it rewrites the file while the next step may be pulling it
// (the picture is the same screen, as no tap came between; a pull can read it short).

#include <string_view>

namespace nines::core {

bool repeatable_command(std::string_view service);

}  // namespace nines::core
