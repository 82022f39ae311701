// Asio, configured the same way in every translation unit.
//
// Asio decides parts of its ABI from macros while it is preprocessed: with
// ASIO_HAS_STD_ALIGNED_ALLOC its handler memory comes from std::aligned_alloc,
// without it from operator new. Left to asio, the macro depends on whether a
// libstdc++ header came before <asio.hpp> in that file, so two translation
// units could disagree and one free what the other allocated
// (AddressSanitizer's alloc-dealloc-mismatch in an ASan-built addon). The
// build defines ASIO_STANDALONE, ASIO_NO_DEPRECATED and
// ASIO_HAS_STD_ALIGNED_ALLOC for every target (CMakeLists.txt, PUBLIC on
// rayts_core), and every file includes asio through this header, never
// <asio.hpp> directly (the CMake configure step checks that).
// Thread safety: a header of macros and includes.
#pragma once

#if !defined(ASIO_STANDALONE) || !defined(ASIO_NO_DEPRECATED) || !defined(ASIO_HAS_STD_ALIGNED_ALLOC)
#error "asio's configuration macros are missing: build through CMakeLists.txt (target rayts_core sets them)"
#endif

#include <asio.hpp>
