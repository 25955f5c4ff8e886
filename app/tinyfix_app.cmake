# SPDX-License-Identifier: Apache-2.0
#
# Shared by app/CMakeLists.txt and tests/app/CMakeLists.txt; include it before
# find_package(Zephyr). It
#  - adds the repository as a Zephyr module, so modules/tinyfix and its bindings are found
#    without a west manifest entry or -DZEPHYR_EXTRA_MODULES (a copy also found through
#    west is dropped by module name);
#  - generates the sources of the model the firmware runs, -DTINYFIX_MODEL=path/to/model.tflite
#    (default: the bundled demo model), into <build>/tinyfix_model: its C array, its op list
#    for the op resolver, its tensor shapes and a Kconfig fragment sizing TinyFix and the
#    arena for it (scripts/gen_model_sources.py, Python standard library only). A model TFLM
#    cannot run, or one too large for the board, stops the build with a clear message;
#  - picks the repository's boards/<board>.overlay and boards/<board>.conf, the per-board
#    differences (link UART, sensor, settings backend), as Zephyr would pick an app's own
#    boards/ files. A user's -DEXTRA_CONF_FILE / -DEXTRA_DTC_OVERLAY_FILE (calibrate.py's
#    tinyfix.conf and tinyfix.overlay) come after them, so they win;
#  - tells Zephyr that a GNU Arm Embedded toolchain has picolibc when it does (see below).

# Debian's (and Arm's) arm-none-eabi GCC ship picolibc, but Zephyr's gnuarmemb toolchain
# files do not say so, and their newlib lacks the retargetable locking Zephyr needs for C++
# (lib/libc/newlib/libc-hooks.c stops the build). Find its picolibc.specs and say so,
# unless the user already chose (-DTOOLCHAIN_HAS_PICOLIBC=ON/OFF).
set(tinyfix_variant "${ZEPHYR_TOOLCHAIN_VARIANT}")
if(tinyfix_variant STREQUAL "")
  set(tinyfix_variant "$ENV{ZEPHYR_TOOLCHAIN_VARIANT}")
endif()
if(NOT DEFINED TOOLCHAIN_HAS_PICOLIBC AND tinyfix_variant STREQUAL "gnuarmemb")
  set(tinyfix_gnuarmemb "${GNUARMEMB_TOOLCHAIN_PATH}")
  if(tinyfix_gnuarmemb STREQUAL "")
    set(tinyfix_gnuarmemb "$ENV{GNUARMEMB_TOOLCHAIN_PATH}")
  endif()
  find_program(tinyfix_arm_gcc arm-none-eabi-gcc HINTS "${tinyfix_gnuarmemb}/bin" NO_CACHE)
  if(tinyfix_arm_gcc)
    execute_process(COMMAND ${tinyfix_arm_gcc} -print-file-name=picolibc.specs
      OUTPUT_VARIABLE tinyfix_picolibc_specs OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(IS_ABSOLUTE "${tinyfix_picolibc_specs}" AND EXISTS "${tinyfix_picolibc_specs}")
      message(STATUS "TinyFix: ${tinyfix_arm_gcc} has picolibc, building with it")
      set(TOOLCHAIN_HAS_PICOLIBC ON CACHE BOOL "True if toolchain supports picolibc")
    endif()
  endif()
endif()

get_filename_component(TINYFIX_REPO ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)
list(APPEND ZEPHYR_EXTRA_MODULES ${TINYFIX_REPO})
set(TINYFIX_APP_DIR ${CMAKE_CURRENT_LIST_DIR})

# BOARD is not resolved yet: take what the user gave (command line, cache or environment;
# under sysbuild, the image's sysbuild cache, which Zephyr itself reads only later).
if(DEFINED BOARD)
  set(tinyfix_board ${BOARD})
elseif(DEFINED SYSBUILD_CACHE AND EXISTS "${SYSBUILD_CACHE}")
  file(STRINGS "${SYSBUILD_CACHE}" tinyfix_sb_board REGEX "^BOARD:STRING=")
  string(REGEX REPLACE "^BOARD:STRING=" "" tinyfix_board "${tinyfix_sb_board}")
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

# ---- The model ----------------------------------------------------------------------------

set(TINYFIX_DEMO_MODEL ${TINYFIX_REPO}/models/gesture/gesture_int8.tflite)
if(NOT DEFINED TINYFIX_MODEL AND DEFINED ENV{TINYFIX_MODEL})
  set(TINYFIX_MODEL $ENV{TINYFIX_MODEL})
endif()
if(NOT DEFINED TINYFIX_MODEL OR "${TINYFIX_MODEL}" STREQUAL "")
  set(TINYFIX_MODEL ${TINYFIX_DEMO_MODEL})
endif()
# A relative path is the user's: from where they ran west (PWD), else from the app.
if(NOT IS_ABSOLUTE "${TINYFIX_MODEL}" AND EXISTS "$ENV{PWD}/${TINYFIX_MODEL}")
  set(TINYFIX_MODEL "$ENV{PWD}/${TINYFIX_MODEL}")
endif()
get_filename_component(TINYFIX_MODEL "${TINYFIX_MODEL}" ABSOLUTE)
set(TINYFIX_MODEL ${TINYFIX_MODEL} CACHE FILEPATH "The .tflite model the firmware runs" FORCE)
if(NOT EXISTS "${TINYFIX_MODEL}")
  message(FATAL_ERROR "TINYFIX_MODEL: no such file ${TINYFIX_MODEL}")
endif()

if(DEFINED WEST_PYTHON)
  set(tinyfix_python ${WEST_PYTHON})
else()
  find_program(tinyfix_python NAMES python3 python REQUIRED)
endif()
set(TINYFIX_MODEL_DIR ${CMAKE_BINARY_DIR}/tinyfix_model)
execute_process(
  COMMAND ${tinyfix_python} ${TINYFIX_REPO}/scripts/gen_model_sources.py ${TINYFIX_MODEL}
          ${TINYFIX_MODEL_DIR} --summary
  RESULT_VARIABLE tinyfix_gen_result
  OUTPUT_VARIABLE tinyfix_gen_out
  ERROR_VARIABLE tinyfix_gen_err
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE)
if(NOT tinyfix_gen_result EQUAL 0)
  message(FATAL_ERROR "${tinyfix_gen_err}")
endif()
message(STATUS "${tinyfix_gen_out}")
# A changed model (or generator) runs CMake again.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${TINYFIX_MODEL} ${TINYFIX_REPO}/scripts/gen_model_sources.py
  ${TINYFIX_REPO}/scripts/tflite_reader.py)

set(tinyfix_model_conf ${TINYFIX_MODEL_DIR}/model.conf)
if(TINYFIX_MODEL STREQUAL TINYFIX_DEMO_MODEL)
  set(TINYFIX_DEMO_BUILD 1)
else()
  # The local input providers make the demo model's accelerometer windows: another model
  # is fed by the host link only.
  file(WRITE ${TINYFIX_MODEL_DIR}/user_model.conf
    "# A user model (-DTINYFIX_MODEL): the host link feeds it.\nCONFIG_APP_INPUT_NONE=y\n")
  list(APPEND tinyfix_model_conf ${TINYFIX_MODEL_DIR}/user_model.conf)
  set(TINYFIX_DEMO_BUILD 0)
endif()

# Local variables: Zephyr merges them ahead of the cache's (the user's) values, so a user's
# tinyfix.conf still wins over the model's sizes and the board's choices.
set(EXTRA_CONF_FILE ${tinyfix_model_conf})
if(DEFINED tinyfix_board_conf)
  list(APPEND EXTRA_CONF_FILE ${tinyfix_board_conf})
endif()
if(DEFINED tinyfix_board_overlay)
  set(EXTRA_DTC_OVERLAY_FILE ${tinyfix_board_overlay})
endif()
