<?php
// Finishes a WordPress install and creates the pages a site's checks look for,
// through WordPress's own functions (no browser, no wp-cli). Idempotent.
//
//   php wp-setup.php install|pages ROOT  < site.json
//
// site.json is the site's dictionary from the plan (domain, title, admin_email,
// checks[path, keyword]; for `pages` also permalinks). Prints {"changed": [...]}.
// Run as the site's user.

[$script, $mode, $root] = $argv + [null, null, null];
if (!in_array($mode, ['install', 'pages'], true) || !is_file("$root/wp-load.php")) {
    fwrite(STDERR, "usage: php wp-setup.php install|pages WORDPRESS_ROOT < site.json\n");
    exit(2);
}
$site = json_decode(stream_get_contents(STDIN), true, 32, JSON_THROW_ON_ERROR);
// WordPress expects a request; the site's own domain is the honest one.
$_SERVER['HTTP_HOST'] = $_SERVER['SERVER_NAME'] = $site['domain'];
$_SERVER['REQUEST_URI'] = '/';
// No cron run from here: it would call the site over HTTP in the middle of setup.
define('DISABLE_WP_CRON', true);
$changed = [];

if ($mode === 'install') {
    define('WP_INSTALLING', true);
    require "$root/wp-load.php";
    require_once ABSPATH . 'wp-admin/includes/upgrade.php';
    if (!is_blog_installed()) {
        // The admin password is random and never shown: the agency sets its own
        // through WordPress's password reset when someone needs to log in.
        $result = wp_install($site['title'], 'admin', $site['admin_email'], true, '', wp_generate_password(32));
        if (empty($result['user_id'])) {
            fwrite(STDERR, "wp_install failed\n");
            exit(1);
        }
        $changed[] = 'installed';
    }
} else {
    require "$root/wp-load.php";
    require_once ABSPATH . 'wp-admin/includes/post.php';
    if (get_option('blogname') !== $site['title']) {
        update_option('blogname', $site['title']);
        $changed[] = 'title';
    }
    if (get_option('permalink_structure') !== $site['permalinks']) {
        update_option('permalink_structure', $site['permalinks']);
        $changed[] = 'permalinks';
    }
    foreach ($site['checks'] as $check) {
        $changed = array_merge($changed, ensure_page($check['path'], $check['keyword'], $site['title']));
    }
    if ($changed) {
        flush_rewrite_rules(false);  // rules live in the database; nginx needs no .htaccess
    }
}
echo json_encode(['changed' => $changed]), "\n";

/** The page at $path shows $keyword; pages are created only where none exist. */
function ensure_page(string $path, string $keyword, string $title): array
{
    $slugs = array_values(array_filter(explode('/', trim($path, '/')), 'strlen'));
    if (!$slugs) {
        // The front page: every theme prints the site title in <title>.
        if (str_contains($title, $keyword)) {
            return [];
        }
        $front = (int) get_option('page_on_front');
        if ($front && get_option('show_on_front') === 'page') {
            return [];
        }
        $id = create_page('home', $keyword, 0);
        update_option('show_on_front', 'page');
        update_option('page_on_front', $id);
        return ["front page"];
    }
    $changed = [];
    $parent = 0;
    foreach ($slugs as $i => $slug) {
        $page = get_page_by_path(implode('/', array_slice($slugs, 0, $i + 1)));
        if ($page === null) {
            $page = get_post(create_page($slug, $i === count($slugs) - 1 ? $keyword : ucfirst($slug), $parent));
            $changed[] = "page /" . implode('/', array_slice($slugs, 0, $i + 1)) . "/";
        }
        $parent = $page->ID;
    }
    return $changed;
}

function create_page(string $slug, string $heading, int $parent): int
{
    $id = wp_insert_post([
        'post_type' => 'page',
        'post_status' => 'publish',
        'post_name' => $slug,
        'post_title' => $heading,
        'post_content' => '<!-- wp:paragraph --><p>' . esc_html($heading) . '</p><!-- /wp:paragraph -->',
        'post_parent' => $parent,
    ], true);
    if (is_wp_error($id)) {
        fwrite(STDERR, "cannot create page $slug: " . $id->get_error_message() . "\n");
        exit(1);
    }
    return $id;
}
