#!/usr/bin/python3
"""A real drop target for the drag-out test: a GTK 3 window that accepts `text/uri-list` drops
(what a file manager accepts) and copies each dropped file or folder into DEST, as a file manager
does when a file is dropped on a folder. Prints `ready` once mapped, then one line per drop:
`dropped NAME` (or `error WHAT`).

    /usr/bin/python3 drop-target.py DEST X Y     (DISPLAY set; Debian: python3-gi, gir1.2-gtk-3.0)
"""
import os
import shutil
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, Gio, GLib, Gtk  # noqa: E402

dest, x, y = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def say(line):
    print(line, flush=True)


def on_received(widget, context, _x, _y, data, _info, time):
    ok = True
    for uri in data.get_uris() or []:
        path = Gio.File.new_for_uri(uri).get_path()
        if not path or not os.path.exists(path):
            say(f"error {uri} is not a local file")
            ok = False
            continue
        name = os.path.basename(path)
        try:
            if os.path.isdir(path):
                shutil.copytree(path, os.path.join(dest, name))
            else:
                shutil.copyfile(path, os.path.join(dest, name))
            say(f"dropped {name}")
        except OSError as e:
            say(f"error {e}")
            ok = False
    Gtk.drag_finish(context, ok, False, time)


win = Gtk.Window(title="Drop target")
win.set_default_size(160, 240)
win.move(x, y)
label = Gtk.Label(label="Drop files here")
win.add(label)
win.drag_dest_set(Gtk.DestDefaults.ALL, [], Gdk.DragAction.COPY)
win.drag_dest_add_uri_targets()
win.connect("drag-data-received", on_received)
win.connect("destroy", Gtk.main_quit)
win.connect("map-event", lambda *_: GLib.idle_add(lambda: say("ready")) and False)
win.show_all()
Gtk.main()
