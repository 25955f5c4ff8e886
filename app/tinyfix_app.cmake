# SPDX-License-Identifier: Apache-2.0
#
# Shared by app/CMakeLists.txt and tests/app/CMakeLists.txt; include it before
# find_package(Zephyr). It
#  - adds the repository as a Zephyr module, so modules/tinyfix and its bindings are found
#    without a west manifest entry or -DZEPHYR_EXTRA_MODULES (a copy also found through
#    west is dropped by module name);
#  - picks the repository's boards/<board>.overlay and boards/<board>.conf, the per-board
#    differences (link UART, sensor, settings backend), as Zephyr would pick an app's own
#    boards/ files. A user's -DEXTRA_CONF_FILE / -DEXTRA_DTC_OVERLAY_FILE (calibrate.py's
#    tinyfix.conf and tinyfix.overlay) come after them, so they win.

get_filename_component(TINYFIX_REPO ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)
list(APPEND ZEPHYR_EXTRA_MODULES ${TINYFIX_REPO})
set(TINYFIX_APP_DIR ${CMAKE_CURRENT_LIST_DIR})

# BOARD is not resolved yet: take what the user gave (command line, cache or environment).
if(DEFINED BOARD)
  set(tinyfix_board ${BOARD})
elseif(DEFINED ENV{BOARD})
  set(tinyfix_board $ENV{BOARD})
else()
  set(tinyfix_board "")
endif()
# "nrf52840dk/nrf52840@1.0.0" -> try nrf52840dk_nrf52840, then nrf52840dk.
string(REGEX REPLACE "@[^/]*" "" tinyfix_board "${tinyfix_board}")
string(REPLACE "/" "_" tinyfix_board_full "${tinyfix_board}")
string(REGEX REPLACE "/.*" "" tinyfix_board_name "${tinyfix_board}")

foreach(kind conf overlay)
  foreach(name ${tinyfix_board_full} ${tinyfix_board_name})
    if(NOT "${name}" STREQUAL "" AND EXISTS ${TINYFIX_REPO}/boards/${name}.${kind})
      set(tinyfix_board_${kind} ${TINYFIX_REPO}/boards/${name}.${kind})
      break()
    endif()
  endforeach()
endforeach()

# Local variables: Zephyr merges them ahead of the cache's (the user's) values.
if(DEFINED tinyfix_board_conf)
  set(EXTRA_CONF_FILE ${tinyfix_board_conf})
endif()
if(DEFINED tinyfix_board_overlay)
  set(EXTRA_DTC_OVERLAY_FILE ${tinyfix_board_overlay})
endif()
