// The sshd_config of a throwaway sshd on 127.0.0.1 (its keys in a temp dir, public-key login only):
// shared by the ssh tests (test/helpers/services.js) and the ssh -L rows of the bench.

/** The config text for `port`, host key `hostKey` and the authorized_keys file `authorizedKeys`. */
export function sshdConfig({ port, hostKey, authorizedKeys, logLevel = 'INFO' }) {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    'PidFile none',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The temp dir is ours; its modes are not what StrictModes wants for a home dir.
    'StrictModes no',
    'X11Forwarding no',
    'PrintMotd no',
    `LogLevel ${logLevel}`,
    '',
  ].join('\n');
}
