#!/usr/bin/env python3
"""Clicks a window's close button the way a window manager does: sends the X11 window
WM_PROTOCOLS / WM_DELETE_WINDOW (ICCCM 4.2.8.1), which GTK turns into its delete-event (Tauri's
CloseRequested). Xvfb has no window manager and WebDriver's "close window" destroys the web view
without asking the window, so neither tries the app's own close path.

    python3 wm-close.py WINDOW_ID...     (X window ids as xdotool prints them; DISPLAY set)
"""
import ctypes
import sys

x11 = ctypes.cdll.LoadLibrary("libX11.so.6")
x11.XOpenDisplay.restype = ctypes.c_void_p
x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
x11.XInternAtom.restype = ctypes.c_ulong
x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x11.XFlush.argtypes = [ctypes.c_void_p]
x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

CLIENT_MESSAGE = 33


class ClientMessageData(ctypes.Union):
    _fields_ = [("l", ctypes.c_long * 5)]


class XClientMessageEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ClientMessageData),
    ]


class XEvent(ctypes.Union):
    _fields_ = [("xclient", XClientMessageEvent), ("pad", ctypes.c_long * 24)]


def main() -> int:
    display = x11.XOpenDisplay(None)
    if not display:
        print("wm-close: cannot open the X display", file=sys.stderr)
        return 2
    protocols = x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
    delete = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
    for arg in sys.argv[1:]:
        event = XEvent()
        event.xclient.type = CLIENT_MESSAGE
        event.xclient.window = int(arg, 0)
        event.xclient.message_type = protocols
        event.xclient.format = 32
        event.xclient.data.l[0] = delete
        event.xclient.data.l[1] = 0  # CurrentTime
        x11.XSendEvent(display, int(arg, 0), 0, 0, ctypes.byref(event))
    x11.XFlush(display)
    x11.XCloseDisplay(display)
    return 0


if __name__ == "__main__":
    sys.exit(main())
