#pragma once
// Whether the ADB proxy may send a phone's command again after adb answered `closed`: the
// phone's transport went away before the phone's OKAY reached the server. That does not say the
// phone never got the command: an OPEN written just before a link went silent sits in the
// server's socket, and when the link returns the kernel still delivers it to the phone (a close
// keeps unsent data) while the proxy sends the command on the new transport. A tap sent twice is
// two taps (two purchases, two messages sent), so only what is the same done twice is repeated:
//
//   sync:                     opening the service does nothing by itself (the pull or push
//                             follows adb's OKAY)
//   shell:CMD, exec:CMD,      when CMD's first word reads, or writes what it would write again
//   shell,OPTIONS:CMD         (echo, screencap, getprop, dumpsys, cat, ls, stat, rm, wm size,
//                             uiautomator dump) and nothing in CMD outside single quotes can join
//                             another command (; & | < > ` $ ( ) " \ or a line break)
//
// Everything else (input, am, monkey, an interactive shell, anything unknown) is passed back to
// the agent as adb's refusal: an unknown outcome is refused, not guessed.

#include <string_view>

namespace nines::core {

bool repeatable_command(std::string_view service);

}  // namespace nines::core
