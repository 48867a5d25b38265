# Renders kindling-entrypoint.service from guest.json's "image" section; prints nothing when the
# image has no ENTRYPOINT/CMD. Quoting follows systemd.syntax(7): "%" is a specifier everywhere,
# "$" expands only in ExecStart.
def execarg: "\"" + (gsub("\\\\"; "\\\\") | gsub("\""; "\\\"") | gsub("\n"; "\\n") | gsub("%"; "%%") | gsub("\\$"; "$$")) + "\"";
def envarg: "\"" + (gsub("\\\\"; "\\\\") | gsub("\""; "\\\"") | gsub("\n"; "\\n") | gsub("%"; "%%")) + "\"";
def plain: gsub("%"; "%%");

(.image // {}) as $img
| (($img.entrypoint // []) + ($img.cmd // [])) as $argv
| if ($argv | length) == 0 then empty else
  (($img.user // "") | split(":")) as $ug
  | [
      "[Unit]",
      "Description=kindling image entrypoint",
      "After=kindling-boot.service network.target",
      "",
      "[Service]",
      "Type=simple",
      # env(1) resolves argv[0] through the image's PATH, as a container runtime would.
      "ExecStart=/usr/bin/env -- " + ($argv | map(tostring | execarg) | join(" ")),
      "Environment=" + ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" | envarg),
      ($img.env // [] | .[] | "Environment=" + (tostring | envarg)),
      # An explicit User= (root by default) makes systemd set HOME, USER and SHELL as a container runtime does.
      "User=" + (if ($ug[0] // "") != "" then ($ug[0] | plain) else "root" end),
      (if ($ug[1] // "") != "" then "Group=" + ($ug[1] | plain) else empty end),
      "WorkingDirectory=" + (if ($img.workingDir // "") == "" then "/" else ($img.workingDir | plain) end),
      "KillSignal=" + (if ($img.stopSignal // "") == "" then "SIGTERM" else ($img.stopSignal | plain) end),
      "StandardOutput=journal+console",
      "StandardError=journal+console"
    ]
  | join("\n")
  end
