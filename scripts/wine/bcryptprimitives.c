/* A stand-in bcryptprimitives.dll for Wine older than 8.13 (Debian 12 ships Wine 8.0).
 *
 * Rust >= 1.78's standard library imports ProcessPrng from bcryptprimitives.dll for its random
 * numbers (HashMap seeds and the like); Wine added that DLL only in 8.13, so without this file
 * every Rust program built for x86_64-pc-windows-gnu fails to load under Wine 8.0 ("Library
 * bcryptprimitives.dll not found", status c0000135). This implements ProcessPrng over
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has. It is for running the Windows
 * build under Wine in the test suite only; real Windows has its own DLL.
 *
 * Built by scripts/setup.sh with the MinGW it installs:
 *   x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll \
 *     bcryptprimitives.c bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Fills data with cb_data cryptographically random bytes; always TRUE, like Windows' own. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T cb_data)
{
    while (cb_data > 0) {
        ULONG chunk = cb_data > 0x40000000 ? 0x40000000 : (ULONG)cb_data;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        cb_data -= chunk;
    }
    return TRUE;
}
