/*
 * http_page: the page (GET /, compiled in from http_index.html: no file
 * to install, no CDN) and the icon its browser asks for.
 */
#include "http_int.h"
#include "http_index.h"

/* Static HTML holding no data, open without the token (see route_of). */
enum MHD_Result
get_page(struct MHD_Connection *c)
{
	return send_buf(c, 200, "text/html; charset=utf-8",
	    (const char *)http_index_html, http_index_html_len);
}

/* The browser asks for it on its own, without the token: a tiny icon
 * (an SVG, which browsers take at this name) rather than a 404 or 401
 * in every page's console. */
enum MHD_Result
get_favicon(struct MHD_Connection *c)
{
	static const char icon[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "viewBox=\"0 0 16 16\"><rect x=\"1\" y=\"3\" width=\"14\" "
	    "height=\"10\" rx=\"2\" fill=\"#2b6cb0\"/><circle cx=\"5\" "
	    "cy=\"7\" r=\"1.5\" fill=\"#fff\"/><path d=\"M3 12l4-4 3 3 "
	    "2-2 2 3z\" fill=\"#fff\"/></svg>\n";
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(sizeof(icon) - 1,
	    (void *)(uintptr_t)icon, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "image/svg+xml");
	MHD_add_response_header(r, "Cache-Control", "max-age=86400");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}
