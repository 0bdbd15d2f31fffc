// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    tunnelbook_core::memory::tune_allocator();
    tunnelbook_app::run();
}
