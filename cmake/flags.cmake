# Compiler settings shared by every target: link hwl_cxx_settings instead of setting flags per target.
add_library(hwl_cxx_settings INTERFACE)
target_compile_features(hwl_cxx_settings INTERFACE cxx_std_20)
set(CMAKE_CXX_EXTENSIONS OFF)
option(HWL_WERROR "Treat warnings as errors (on in CI)" OFF)
option(HWL_SANITIZE "Build with ASan and UBSan" OFF)
target_compile_options(hwl_cxx_settings INTERFACE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
if(HWL_WERROR)
  target_compile_options(hwl_cxx_settings INTERFACE -Werror)
endif()
if(HWL_SANITIZE)
  target_compile_options(hwl_cxx_settings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(hwl_cxx_settings INTERFACE -fsanitize=address,undefined)
endif()
# libFuzzer targets (clang only): coverage for the fuzzer on every library, ASan and UBSan, and
# UBSan findings abort so the fuzzer records them.
option(HWL_FUZZ "Build tests/fuzz as libFuzzer targets (clang)" OFF)
if(HWL_FUZZ)
  target_compile_options(hwl_cxx_settings INTERFACE -fsanitize=fuzzer-no-link,address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(hwl_cxx_settings INTERFACE -fsanitize=address,undefined)
endif()
# Asio and Beast are compiled once, in common/src/asio_impl.cpp.
target_compile_definitions(hwl_cxx_settings INTERFACE
  BOOST_ASIO_SEPARATE_COMPILATION BOOST_BEAST_SEPARATE_COMPILATION
  BOOST_ASIO_NO_DEPRECATED BOOST_JSON_NO_LIB BOOST_URL_NO_LIB)
