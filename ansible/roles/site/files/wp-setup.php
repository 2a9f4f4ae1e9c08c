<?php
// Sets up one WordPress site, idempotently, in one run (one Ansible round trip):
//   1. its own copy of Debian's WordPress in ROOT (links resolved), if it has none;
//   2. its keys and salts (ROOT/wp-salts.php, 0600), generated once, never printed;
//   3. the install finished through WordPress's own functions (no browser, no wp-cli);
//   4. the site title, pretty permalinks and a page for every check the plan names, its keyword in the
//      page's content (placeholders until the client's own pages replace them).
//
//   php wp-setup.php ROOT < site.json        # as the site's user; ROOT/wp-config.php exists
//
// site.json is the site's dictionary from the plan (domain, title, admin_email,
// checks[path, keyword], permalinks). Prints {"changed": [...]}.
// The install runs in a child process: WordPress loads differently while installing.

const SOURCE = '/usr/share/wordpress';
// Written last by the copy, so an interrupted copy is redone.
const COPIED_MARKER = 'wp-includes/version.php';
// Post meta on the pages carestack writes: the content it wrote, so an edited page is never touched.
const PLACEHOLDER_MARKER = '_carestack_placeholder';
// The sticky post that carries the front page's keyword while the front page lists posts.
const FRONT_POST = 'welcome';
const SALTS = ['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY',
               'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'];

[$script, $first, $second] = $argv + [null, null, null];
$installing = $first === '--install';
$root = $installing ? $second : $first;
if (!$root || !is_file("$root/wp-config.php")) {
    fail("usage: php wp-setup.php WORDPRESS_ROOT < site.json (and WORDPRESS_ROOT/wp-config.php must exist)", 2);
}
$input = stream_get_contents(STDIN);
$site = json_decode($input, true, 32, JSON_THROW_ON_ERROR);
// WordPress expects a request; the site's own domain is the honest one. No cron
// run from here: it would call the site over HTTP in the middle of the setup.
$_SERVER['HTTP_HOST'] = $_SERVER['SERVER_NAME'] = $site['domain'];
$_SERVER['REQUEST_URI'] = '/';
define('DISABLE_WP_CRON', true);

if ($installing) {
    report(install($root, $site));
}
$changed = array_merge(copy_wordpress($root), write_salts($root), install_in_child($script, $root, $input));
require "$root/wp-load.php";
report(array_merge($changed, configure($site)));


function copy_wordpress(string $root): array
{
    if (is_file("$root/" . COPIED_MARKER)) {
        return [];
    }
    $items = new RecursiveIteratorIterator(
        new RecursiveDirectoryIterator(SOURCE, FilesystemIterator::SKIP_DOTS | FilesystemIterator::FOLLOW_SYMLINKS),
        RecursiveIteratorIterator::SELF_FIRST
    );
    foreach ($items as $item) {
        $relative = substr($item->getPathname(), strlen(SOURCE) + 1);
        // The site's own wp-config.php stays; Debian's picks a config by Host header.
        if ($relative === 'wp-config.php' || $relative === COPIED_MARKER) {
            continue;
        }
        $target = "$root/$relative";
        if ($item->isDir()) {
            is_dir($target) || mkdir($target, 0755) || fail("cannot create $target");
        } else {
            copy($item->getPathname(), $target) || fail("cannot copy $relative");
        }
    }
    copy(SOURCE . '/' . COPIED_MARKER, "$root/" . COPIED_MARKER) || fail('cannot copy ' . COPIED_MARKER);
    return ['copied WordPress'];
}

function write_salts(string $root): array
{
    $path = "$root/wp-salts.php";
    if (is_file($path)) {
        return [];
    }
    $text = "<?php\n// WordPress keys and salts, generated on this server by carestack.\n";
    foreach (SALTS as $name) {
        $text .= sprintf("define('%s', '%s');\n", $name, bin2hex(random_bytes(32)));
    }
    $old = umask(0077);
    $written = file_put_contents("$path.tmp", $text) === strlen($text) && rename("$path.tmp", $path);
    umask($old);
    $written || fail("cannot write $path");
    return ['generated keys and salts'];
}

function install_in_child(string $script, string $root, string $input): array
{
    $child = proc_open([PHP_BINARY, $script, '--install', $root], [0 => ['pipe', 'r'], 1 => ['pipe', 'w']], $pipes);
    fwrite($pipes[0], $input);
    fclose($pipes[0]);
    $output = stream_get_contents($pipes[1]);
    fclose($pipes[1]);
    if (proc_close($child) !== 0) {
        fail('the WordPress install failed');
    }
    return json_decode($output, true, 8, JSON_THROW_ON_ERROR)['changed'];
}

function install(string $root, array $site): array
{
    define('WP_INSTALLING', true);
    require "$root/wp-load.php";
    require_once ABSPATH . 'wp-admin/includes/upgrade.php';
    if (is_blog_installed()) {
        return [];
    }
    // The admin password is random and never shown: the agency sets its own
    // through WordPress's password reset when someone needs to log in.
    $result = wp_install($site['title'], 'admin', $site['admin_email'], true, '', wp_generate_password(32));
    empty($result['user_id']) && fail('wp_install created no user');
    return ['installed WordPress'];
}

function configure(array $site): array
{
    $changed = [];
    if (get_option('blogname') !== $site['title']) {
        update_option('blogname', $site['title']);
        $changed[] = 'title';
    }
    if (get_option('permalink_structure') !== $site['permalinks']) {
        update_option('permalink_structure', $site['permalinks']);
        $changed[] = 'permalinks';
    }
    foreach ($site['checks'] as $check) {
        $changed = array_merge($changed, ensure_page($check['path'], $check['keyword']));
    }
    if ($changed) {
        flush_rewrite_rules(false);  // the rules live in the database; nginx needs no .htaccess
    }
    return $changed;
}

/**
 * The page at $path shows $keyword in its content (never in its title, which the theme's menu and
 * <title> repeat on every page). Pages are created only where none exist; an existing page is changed
 * only while it is still carestack's placeholder (see is_placeholder).
 */
function ensure_page(string $path, string $keyword): array
{
    $slugs = array_values(array_filter(explode('/', trim($path, '/')), 'strlen'));
    if (!$slugs) {
        return ensure_front_page($keyword);
    }
    $changed = [];
    $parent = 0;
    foreach ($slugs as $i => $slug) {
        $path = implode('/', array_slice($slugs, 0, $i + 1));
        $title = ucfirst(str_replace('-', ' ', $slug));
        $content = $i === count($slugs) - 1 ? $keyword : $title;
        $page = get_page_by_path($path);
        if ($page === null) {
            $page = get_post(create_page($slug, $title, $content, $parent));
            $changed[] = "page /$path/";
        } elseif ($content === $keyword) {
            $changed = array_merge($changed, fill_placeholder($page, $title, $keyword, "/$path/"));
        }
        $parent = $page->ID;
    }
    return $changed;
}

/**
 * The front page shows $keyword: a page set as the front page holds it, else (the front page lists the
 * latest posts) a sticky post does. A static front page of our own would make WordPress redirect a
 * plain-HTTP request for "/" to the site's https:// address.
 */
function ensure_front_page(string $keyword): array
{
    if (get_option('show_on_front') === 'page') {
        return fill_placeholder(get_post((int) get_option('page_on_front')), 'Home', $keyword, '/');
    }
    $found = get_posts(['name' => FRONT_POST, 'post_type' => 'post', 'post_status' => 'any', 'numberposts' => 1]);
    if ($found) {
        return fill_placeholder($found[0], 'Welcome', $keyword, '/');
    }
    $id = create_page(FRONT_POST, 'Welcome', $keyword, 0, 'post');
    stick_post($id);
    return ['front page post'];
}

function placeholder_content(string $text): string
{
    return '<!-- wp:paragraph --><p>' . esc_html($text) . '</p><!-- /wp:paragraph -->';
}

/** A page carestack wrote and nobody has edited since: its content is still one placeholder paragraph. */
function is_placeholder(WP_Post $page): bool
{
    // Placeholders carry their marker; older ones repeated their title as their only paragraph.
    $written = get_post_meta($page->ID, PLACEHOLDER_MARKER, true);
    return ($written !== '' && $written === $page->post_content)
        || $page->post_content === placeholder_content($page->post_title);
}

function fill_placeholder(?WP_Post $page, string $title, string $keyword, string $path): array
{
    if ($page === null || !is_placeholder($page) || $page->post_content === placeholder_content($keyword)) {
        return [];
    }
    $result = wp_update_post(
        ['ID' => $page->ID, 'post_title' => $title, 'post_content' => placeholder_content($keyword)],
        true
    );
    is_wp_error($result) && fail("cannot update page $path: " . $result->get_error_message());
    update_post_meta($page->ID, PLACEHOLDER_MARKER, placeholder_content($keyword));
    return ["page $path"];
}

function create_page(string $slug, string $title, string $content, int $parent, string $type = 'page'): int
{
    $id = wp_insert_post([
        'post_type' => $type,
        'post_status' => 'publish',
        'post_name' => $slug,
        'post_title' => $title,
        'post_content' => placeholder_content($content),
        'post_parent' => $parent,
    ], true);
    is_wp_error($id) && fail("cannot create page $slug: " . $id->get_error_message());
    update_post_meta($id, PLACEHOLDER_MARKER, placeholder_content($content));
    return $id;
}

function report(array $changed): never
{
    echo json_encode(['changed' => $changed]), "\n";
    exit(0);
}

function fail(string $message, int $code = 1): never
{
    fwrite(STDERR, "wp-setup: $message\n");
    exit($code);
}
