<?php
// Writes WordPress's keys and salts to the file named by the first argument.
// Run once per site, as the site's user; never overwrites, never prints them.
$names = ['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY',
          'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'];
$out = "<?php\n// WordPress keys and salts, generated on this server by carestack.\n";
foreach ($names as $name) {
    $out .= sprintf("define('%s', '%s');\n", $name, bin2hex(random_bytes(32)));
}
umask(0077);
$file = fopen($argv[1], 'x');
if ($file === false || fwrite($file, $out) !== strlen($out) || !fclose($file)) {
    fwrite(STDERR, "cannot write {$argv[1]}\n");
    exit(1);
}
