<?php
// carestack-agent's bridge to WordPress's own upgrader, for hosts without wp-cli.
// Run by the agent with the PHP CLI, as the owner of the site's files:
//
//   php wp-update.php ROOT DOMAIN inventory          installed plugins, themes, core version
//   php wp-update.php ROOT DOMAIN available          updates WordPress.org offers (as WordPress itself asks)
//   php wp-update.php ROOT DOMAIN apply < items.json upgrade each item from its package, then re-read versions
//
// items.json: [{"kind": "plugin"|"theme", "name": plugin file or theme stylesheet,
//               "to_version": "1.2", "source": "/path/to.zip" or "https://..."}]
// Prints one JSON document on stdout; anything WordPress or a plugin prints is dropped.
//
// How an item is upgraded: the update offer is handed to Plugin_Upgrader / Theme_Upgrader
// through the pre_site_transient_update_{plugins,themes} filter (nothing is stored in the
// database), and WP_Upgrader::download_package() returns a local path as it is. The
// upgrade runs the way WordPress's background updater runs it (wp_doing_cron), so an
// active plugin stays active; the new code is not loaded into this process.

ob_start();
[$script, $root, $domain, $command] = $argv + [null, null, null, null];
if (!$root || !$domain || !in_array($command, ['inventory', 'available', 'apply'], true)) {
    fail('usage: php wp-update.php ROOT DOMAIN inventory|available|apply', 2);
}
// WordPress expects a request: the site's own domain is the honest one. No cron from here.
$_SERVER['HTTP_HOST'] = $_SERVER['SERVER_NAME'] = $domain;
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['REQUEST_METHOD'] = 'GET';
define('DISABLE_WP_CRON', true);

if (!is_file("$root/wp-load.php")) {
    fail("$root/wp-load.php: no WordPress here");
}
require "$root/wp-load.php";
require_once ABSPATH . 'wp-admin/includes/admin.php';
require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php';
// We run as the files' owner: write directly, never ask for FTP credentials.
add_filter('filesystem_method', fn() => 'direct');
if ($command !== 'available') {
    // Only `available` asks WordPress.org. Otherwise WordPress's own update checks (run after every
    // upgrade) would change its cached offers in the database and wait on the network for nothing.
    foreach (['wp_update_plugins', 'wp_update_themes', 'wp_version_check'] as $check) {
        remove_action('upgrader_process_complete', $check);
    }
    remove_action('upgrader_process_complete', ['Language_Pack_Upgrader', 'async_upgrade'], 20);
    add_filter('pre_http_request', function ($answer, $args, $url) {
        $host = parse_url($url, PHP_URL_HOST);
        return $host === 'api.wordpress.org' ? new WP_Error('carestack', 'no update checks during an agent run') : $answer;
    }, 10, 3);
}

$input = $command === 'apply' ? json_decode(stream_get_contents(STDIN), true, 16, JSON_THROW_ON_ERROR) : null;
$result = match ($command) {
    'inventory' => inventory(),
    'available' => available(),
    'apply' => array_map('upgrade', $input),
};
ob_end_clean();
echo json_encode($result, JSON_UNESCAPED_SLASHES), "\n";
exit(0);


function inventory(): array
{
    wp_clean_plugins_cache(false);
    $plugins = [];
    foreach (get_plugins() as $file => $data) {
        $plugins[] = ['name' => $file, 'version' => $data['Version'], 'active' => is_plugin_active($file)];
    }
    $themes = [];
    foreach (wp_get_themes(['errors' => null]) as $stylesheet => $theme) {
        $themes[] = ['name' => $stylesheet, 'version' => $theme->get('Version')];
    }
    return ['core' => $GLOBALS['wp_version'], 'plugins' => $plugins, 'themes' => $themes];
}

function available(): array
{
    delete_site_transient('update_plugins');
    delete_site_transient('update_themes');
    wp_update_plugins();
    wp_update_themes();
    $plugins = get_site_transient('update_plugins');
    $themes = get_site_transient('update_themes');
    // Both only record what they checked after WordPress.org answered.
    if (empty($plugins->checked) || empty($themes->checked)) {
        fail('WordPress.org did not answer the update check');
    }
    $offers = [];
    foreach ($plugins->response ?? [] as $file => $offer) {
        $offers[] = ['kind' => 'plugin', 'name' => $file, 'version' => $offer->new_version, 'source' => $offer->package];
    }
    foreach ($themes->response ?? [] as $stylesheet => $offer) {
        $offers[] = ['kind' => 'theme', 'name' => $stylesheet, 'version' => $offer['new_version'],
                     'source' => $offer['package']];
    }
    return $offers;
}

function upgrade(array $item): array
{
    $kind = $item['kind'];
    $name = $item['name'];
    $skin = new Automatic_Upgrader_Skin();
    add_filter('wp_doing_cron', '__return_true');
    if ($kind === 'plugin') {
        $slug = dirname($name) === '.' ? basename($name, '.php') : dirname($name);
        $offer = (object) ['slug' => $slug, 'plugin' => $name, 'new_version' => $item['to_version'],
                           'package' => $item['source'], 'url' => ''];
        $transient = (object) ['last_checked' => time(), 'response' => [$name => $offer], 'translations' => []];
        $filter = fn() => $transient;
        add_filter('pre_site_transient_update_plugins', $filter);
        $result = (new Plugin_Upgrader($skin))->upgrade($name);
        remove_filter('pre_site_transient_update_plugins', $filter);
        wp_clean_plugins_cache(false);
        $version = get_plugins()[$name]['Version'] ?? null;
    } else {
        $offer = ['theme' => $name, 'new_version' => $item['to_version'], 'package' => $item['source'], 'url' => ''];
        $transient = (object) ['last_checked' => time(), 'response' => [$name => $offer], 'translations' => []];
        $filter = fn() => $transient;
        add_filter('pre_site_transient_update_themes', $filter);
        $result = (new Theme_Upgrader($skin))->upgrade($name);
        remove_filter('pre_site_transient_update_themes', $filter);
        wp_clean_themes_cache(false);
        $version = wp_get_theme($name)->get('Version') ?: null;
    }
    remove_filter('wp_doing_cron', '__return_true');
    $error = is_wp_error($result) ? $result->get_error_message() : ($result === true ? null : 'the upgrader failed');
    return ['kind' => $kind, 'name' => $name, 'ok' => $error === null && $version === $item['to_version'],
            'version' => $version, 'error' => $error,
            'messages' => array_slice(array_map('strval', $skin->get_upgrade_messages()), -5)];
}

function fail(string $message, int $code = 1): never
{
    while (ob_get_level()) {
        ob_end_clean();
    }
    fwrite(STDERR, "wp-update: $message\n");
    exit($code);
}
