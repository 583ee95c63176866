// JPEG and PNG decoding for the ImageNet loader (see imagecodecs.h). Errors from the
// libraries come back through setjmp/longjmp inside this file only; nothing of libjpeg or
// libpng crosses into Swift but the decoded pixels.
#include "imagecodecs.h"

#include <stdio.h>  // before jpeglib.h, which uses FILE
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <png.h>

void qt_image_free(unsigned char *pixels) { free(pixels); }

static int too_large(size_t w, size_t h, size_t max_pixels, char *err, size_t errlen) {
    if (w == 0 || h == 0) {
        snprintf(err, errlen, "empty image (%zu x %zu)", w, h);
        return 1;
    }
    if (w > max_pixels / h) {
        snprintf(err, errlen, "image of %zu x %zu pixels is larger than the %zu-pixel limit", w, h, max_pixels);
        return 1;
    }
    return 0;
}

// MARK: JPEG

struct qt_jpeg_error {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *err;
    size_t errlen;
};

static void qt_jpeg_exit(j_common_ptr cinfo) {
    struct qt_jpeg_error *e = (struct qt_jpeg_error *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    snprintf(e->err, e->errlen, "JPEG: %s", buffer);
    longjmp(e->jump, 1);
}

static void qt_jpeg_quiet(j_common_ptr cinfo) { (void)cinfo; }

// Pillow's MULDIV255 and cmyk2rgb (libImaging/Convert.c).
static unsigned char muldiv255(int a, int b) {
    int t = a * b + 128;
    return (unsigned char)(((t >> 8) + t) >> 8);
}

static int decode_jpeg(const unsigned char *data, size_t size, size_t max_pixels, unsigned char **pixels, int *width,
                       int *height, char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    struct qt_jpeg_error jerr;
    unsigned char *volatile out = NULL;
    unsigned char *volatile row = NULL;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = qt_jpeg_exit;
    jerr.pub.output_message = qt_jpeg_quiet;
    jerr.err = err;
    jerr.errlen = errlen;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(out);
        free(row);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    int inverted = cmyk && cinfo.saw_Adobe_marker;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    size_t w = cinfo.output_width, h = cinfo.output_height;
    if (too_large(w, h, max_pixels, err, errlen)) {
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    out = malloc(w * h * 3);
    if (cmyk) row = malloc(w * 4);
    if (!out || (cmyk && !row)) {
        snprintf(err, errlen, "out of memory for a %zu x %zu image", w, h);
        jpeg_destroy_decompress(&cinfo);
        free(out);
        free(row);
        return 1;
    }
    while (cinfo.output_scanline < h) {
        size_t y = cinfo.output_scanline;
        if (!cmyk) {
            JSAMPROW r = out + y * w * 3;
            jpeg_read_scanlines(&cinfo, &r, 1);
            continue;
        }
        JSAMPROW r = row;
        jpeg_read_scanlines(&cinfo, &r, 1);
        unsigned char *o = out + y * w * 3;
        for (size_t x = 0; x < w; x++) {
            unsigned char *p = row + 4 * x;
            int c[4];
            for (int k = 0; k < 4; k++) c[k] = inverted ? 255 - p[k] : p[k];
            int nk = 255 - c[3];
            for (int k = 0; k < 3; k++) {
                int v = nk - muldiv255(c[k], nk);
                o[3 * x + k] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    *pixels = out;
    *width = (int)w;
    *height = (int)h;
    return 0;
}

// MARK: PNG

struct qt_png_context {
    const unsigned char *data;
    size_t size, offset;
    char *err;
    size_t errlen;
};

static void qt_png_error(png_structp png, png_const_charp message) {
    struct qt_png_context *c = png_get_error_ptr(png);
    snprintf(c->err, c->errlen, "PNG: %s", message);
    png_longjmp(png, 1);
}

static void qt_png_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void qt_png_read(png_structp png, png_bytep out, size_t n) {
    struct qt_png_context *c = png_get_io_ptr(png);
    if (n > c->size - c->offset) png_error(png, "unexpected end of file (truncated image)");
    memcpy(out, c->data + c->offset, n);
    c->offset += n;
}

static int decode_png(const unsigned char *data, size_t size, size_t max_pixels, unsigned char **pixels, int *width,
                      int *height, char *err, size_t errlen) {
    struct qt_png_context ctx = {data, size, 0, err, errlen};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, qt_png_error, qt_png_warning);
    if (!png) {
        snprintf(err, errlen, "PNG: cannot create a reader");
        return 1;
    }
    png_infop info = png_create_info_struct(png);
    unsigned char *volatile out = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        if (!info) snprintf(err, errlen, "PNG: cannot create a reader");
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        free(out);
        free(rows);
        return 1;
    }
    png_set_read_fn(png, &ctx, qt_png_read);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (too_large(w, h, max_pixels, err, errlen)) png_longjmp(png, 1);
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((type & PNG_COLOR_MASK_COLOR) == 0 && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    if ((type & PNG_COLOR_MASK_COLOR) == 0) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 3) png_error(png, "unexpected row layout after conversion to RGB");
    out = malloc((size_t)w * h * 3);
    rows = malloc(sizeof(png_bytep) * h);
    if (!out || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = out + (size_t)y * w * 3;
    png_read_image(png, rows);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *pixels = out;
    *width = (int)w;
    *height = (int)h;
    return 0;
}

int qt_image_decode(const unsigned char *data, size_t size, size_t max_pixels, unsigned char **pixels,
                    int *width, int *height, char *err, size_t errlen) {
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *pixels = NULL;
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return decode_jpeg(data, size, max_pixels, pixels, width, height, err, errlen);
    if (size >= 8 && memcmp(data, png_magic, 8) == 0)
        return decode_png(data, size, max_pixels, pixels, width, height, err, errlen);
    snprintf(err, errlen, "not a JPEG or PNG image (qtools decodes those two formats)");
    return 1;
}
