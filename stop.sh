umask 077
tb_alive() { tb_st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; case $tb_st in Z*|"") return 1 ;; esac; }
tb_pid=15196
tb_ours() { [ "$tb_pid" -gt 1 ] 2>/dev/null && tb_alive $tb_pid && { if [ -r /proc/$tb_pid/cmdline ]; then tr '\0' '\n' < /proc/$tb_pid/cmdline; else ps -o args= -p $tb_pid; fi; } 2>/dev/null | grep -qF -- 'tb-test123'; }
tb_ours && echo ours || echo notours
