// Which unconfirmed commands the ADB proxy sends again (core/devices/repeatable_command.hpp): a
// command the phone may already have run goes again only if running it twice is running it once.
#include "core/devices/repeatable_command.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

TEST(repeatable_command, an_agents_screenshot_and_pull_go_again_and_its_tap_does_not) {
  // What Open-AutoGLM sends, as the adb client frames it (arguments in single quotes).
  EXPECT_TRUE(repeatable_command("shell:screencap -p /sdcard/tmp.png"));
  EXPECT_TRUE(repeatable_command("shell:screencap '-p' '/sdcard/tmp.png'"));
  EXPECT_TRUE(repeatable_command("sync:"));
  EXPECT_TRUE(repeatable_command("shell,v2,raw:dumpsys window"));
  EXPECT_TRUE(repeatable_command("exec:echo nines"));
  EXPECT_TRUE(repeatable_command("shell:uiautomator dump /sdcard/ui.xml"));
  EXPECT_TRUE(repeatable_command("shell:dumpsys"));
  EXPECT_TRUE(repeatable_command("shell:getprop ro.product.model"));
  // A late copy would delete the next step's screenshot, or change what came after it.
  EXPECT_FALSE(repeatable_command("shell:rm -f /sdcard/tmp.png"));
  EXPECT_FALSE(repeatable_command("shell:wm size"));
  EXPECT_FALSE(repeatable_command("shell:wm size 100x100"));
  EXPECT_FALSE(repeatable_command("shell:input tap 540 1170"));
  EXPECT_FALSE(repeatable_command("shell:'input' 'tap' '540' '1170'"));
  EXPECT_FALSE(repeatable_command("shell:input text hello"));
  EXPECT_FALSE(repeatable_command("shell:am start -n com.example/.Main"));
  EXPECT_FALSE(repeatable_command("shell:uiautomator runtest x"));
  EXPECT_FALSE(repeatable_command("shell:wm density 200"));
  EXPECT_FALSE(repeatable_command("shell:uiautomator dump /sdcard/ui.xml extra"));
}

TEST(repeatable_command, dumpsys_repeats_only_where_it_only_reports) {
  EXPECT_TRUE(repeatable_command("shell:dumpsys window"));
  EXPECT_TRUE(repeatable_command("shell:'dumpsys' 'activity'"));
  EXPECT_FALSE(repeatable_command("shell:dumpsys window windows"));
  EXPECT_FALSE(repeatable_command("shell:dumpsys deviceidle step"));
  EXPECT_FALSE(repeatable_command("shell:dumpsys batterystats --reset"));
  EXPECT_FALSE(repeatable_command("shell:dumpsys battery set level 5"));
  EXPECT_FALSE(repeatable_command("shell:dumpsys deviceidle"));
}

TEST(repeatable_command, a_read_that_could_carry_another_command_is_not_repeatable) {
  EXPECT_FALSE(repeatable_command("shell:echo x; input tap 1 1"));
  EXPECT_FALSE(repeatable_command("shell:echo x && input tap 1 1"));
  EXPECT_FALSE(repeatable_command("shell:echo x | sh"));
  EXPECT_FALSE(repeatable_command("shell:echo $(input tap 1 1)"));
  EXPECT_FALSE(repeatable_command("shell:echo `input tap 1 1`"));
  EXPECT_FALSE(repeatable_command("shell:echo x > /sdcard/f"));
  EXPECT_FALSE(repeatable_command("shell:echo x\ninput tap 1 1"));
  EXPECT_FALSE(repeatable_command("shell:echo \"$(id)\""));
  EXPECT_FALSE(repeatable_command("shell:echo 'unterminated"));
  EXPECT_FALSE(repeatable_command("shell:echo \\; input"));
  // Inside single quotes everything is one literal word: no command can start there.
  EXPECT_TRUE(repeatable_command("shell:echo 'a; b && c $(d)'"));
  // A quoted first word is read as sh reads it.
  EXPECT_FALSE(repeatable_command("shell:'in''put' tap 1 1"));
  EXPECT_TRUE(repeatable_command("shell:'ec''ho' x"));
}

TEST(repeatable_command, an_interactive_shell_and_other_services_are_not_repeatable) {
  EXPECT_FALSE(repeatable_command("shell:"));
  EXPECT_FALSE(repeatable_command("shell:   "));
  EXPECT_FALSE(repeatable_command("shell,v2,TERM=xterm,pty:"));
  EXPECT_FALSE(repeatable_command("reboot:"));
  EXPECT_FALSE(repeatable_command("tcpip:5555"));
  EXPECT_FALSE(repeatable_command("root:"));
  EXPECT_FALSE(repeatable_command("sync:x"));
  EXPECT_FALSE(repeatable_command("shellx:echo"));
  EXPECT_FALSE(repeatable_command(""));
  EXPECT_FALSE(repeatable_command("shell:echo\x80"));
}

}  // namespace
}  // namespace nines::core
